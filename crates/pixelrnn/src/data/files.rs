//! Reading dataset files with bounds: the crate's one reader ([`crate::fsio`]) under the names
//! the dataset parsers use.

pub use crate::fsio::{checked_len, read_file, MAX_FILE_BYTES as MAX_DATA_BYTES};

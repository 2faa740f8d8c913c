//! Reading dataset files with bounds: only regular files (not a device such as `/dev/zero`, a
//! pipe or a folder), and never more than [`MAX_DATA_BYTES`], so that a wrong path, a corrupt
//! size or a gzip bomb ends in an error naming the file instead of exhausting memory.

use std::path::Path;

use crate::error::{Error, Result};

/// The most bytes a dataset file may hold or decompress to (8 GiB, far above the largest file
/// this tool reads).
pub const MAX_DATA_BYTES: u64 = 8 << 30;

/// `path`'s size after checking that it is a regular file within [`MAX_DATA_BYTES`].
pub fn checked_len(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::dataset(path, "not a regular file"));
    }
    if meta.len() > MAX_DATA_BYTES {
        return Err(Error::dataset(path, format!("{} bytes, more than the limit of {MAX_DATA_BYTES}", meta.len())));
    }
    Ok(meta.len())
}

/// The bytes of a regular file within [`MAX_DATA_BYTES`].
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    checked_len(path)?;
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

//! Datasets in their distributed formats: MNIST-family IDX files (binarized,
//! 256-level, Fashion-MNIST), CIFAR-10 binary batches, downsampled ImageNet and plain folders of
//! PNG images; verified downloads; seeded shuffled batches.
//!
//! Every loader validates completely before returning: a truncated, corrupt or inconsistent
//! file is an [`Error::Dataset`](crate::Error::Dataset) naming the file and what was expected,
//! never a partly-loaded set.

pub mod batches;
pub mod cifar;
pub mod download;
pub mod files;
pub mod idx;
pub mod image_set;
pub mod mnist;
pub mod png_folder;
pub mod registry;

pub use batches::{read_batch_order, BatchOrder, ShuffledBatches};
pub use image_set::{ImageSet, Split, Splits};
pub use registry::{default_data_dir, load, DatasetName, LoadOptions};

//! CIFAR-10, binary version (<https://www.cs.toronto.edu/~kriz/cifar.html>): files of 3,073-byte
//! records, one label byte then the 1,024 R, 1,024 G and 1,024 B bytes of a 32x32 image.

use std::path::{Path, PathBuf};

use crate::data::image_set::{ImageSet, Splits};
use crate::error::{Error, Result};

/// Bytes per record.
pub const RECORD: usize = 1 + 3 * 32 * 32;
/// The training files.
pub const TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
/// The test file.
pub const TEST_FILE: &str = "test_batch.bin";

/// Reads one CIFAR-10 `.bin` file.
pub fn read_batch(path: &Path) -> Result<ImageSet> {
    parse_batch(path, &crate::data::files::read_file(path)?)
}

/// [`read_batch`] from the file's bytes (`path` names it in errors).
pub fn parse_batch(path: &Path, bytes: &[u8]) -> Result<ImageSet> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(Error::dataset(
            path,
            format!(
                "{} bytes is not a whole number of {RECORD}-byte records (truncated or not a CIFAR-10 .bin file)",
                bytes.len()
            ),
        ));
    }
    let count = bytes.len() / RECORD;
    let mut pixels = Vec::with_capacity(count * (RECORD - 1));
    let mut labels = Vec::with_capacity(count);
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] > 9 {
            return Err(Error::dataset(
                path,
                format!("record {i}: label {} outside 0..=9 (not a CIFAR-10 file?)", record[0]),
            ));
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok(ImageSet { channels: 3, height: 32, width: 32, levels: 256, pixels, labels: Some(labels) })
}

/// Finds the folder with the `.bin` files: `dir` itself or `dir/cifar-10-batches-bin`.
pub fn batches_dir(dir: &Path) -> PathBuf {
    let nested = dir.join("cifar-10-batches-bin");
    if !dir.join(TRAIN_FILES[0]).is_file() && nested.join(TRAIN_FILES[0]).is_file() {
        nested
    } else {
        dir.to_path_buf()
    }
}

/// Whether the training files are present.
pub fn present(dir: &Path) -> bool {
    let dir = batches_dir(dir);
    TRAIN_FILES.iter().all(|n| dir.join(n).is_file())
}

/// The five training batches and, when present, the test batch.
pub fn load(dir: &Path) -> Result<Splits> {
    let dir = batches_dir(dir);
    let mut files = Vec::new();
    let mut parts = Vec::new();
    for name in TRAIN_FILES {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(Error::dataset(&path, format!("missing (expected {} in this folder)", TRAIN_FILES.join(", "))));
        }
        parts.push(read_batch(&path)?);
        files.push(path);
    }
    let train = ImageSet::concat(parts, &dir)?;
    let test_path = dir.join(TEST_FILE);
    let mut notes = Vec::new();
    let test = if test_path.is_file() {
        files.push(test_path.clone());
        Some(read_batch(&test_path)?)
    } else {
        notes.push(format!("{TEST_FILE} not found: no test split"));
        None
    };
    Ok(Splits { train, valid: None, test, files, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of a CIFAR-10 `.bin` file with `n` records.
    pub(crate) fn records(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.push((i % 10) as u8);
            out.extend((0..RECORD - 1).map(|j| ((i + j) % 256) as u8));
        }
        out
    }

    #[test]
    fn loads_planes_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        for name in TRAIN_FILES {
            std::fs::write(dir.path().join(name), records(4)).unwrap();
        }
        let s = load(dir.path()).unwrap();
        assert_eq!(s.train.len(), 20);
        assert!(s.test.is_none());
        // Image 1: R plane starts at byte 1 of record 1, i.e. value (1 + 0) % 256.
        assert_eq!(s.train.image(1)[0], 1);
        assert_eq!(s.train.image(1)[1024], ((1 + 1024) % 256) as u8);
        assert_eq!(s.train.class_counts()[..4], [5, 5, 5, 5]);
    }

    #[test]
    fn wrong_record_size_and_bad_label_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data_batch_1.bin");
        std::fs::write(&p, &records(2)[..RECORD + 10]).unwrap();
        let err = read_batch(&p).unwrap_err().to_string();
        assert!(err.contains("data_batch_1.bin") && err.contains("3073-byte records"), "{err}");
        let mut r = records(2);
        r[RECORD] = 200;
        std::fs::write(&p, r).unwrap();
        assert!(read_batch(&p).unwrap_err().to_string().contains("record 1: label 200"));
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("data_batch_1.bin") || err.contains("data_batch_2.bin"), "{err}");
    }
}

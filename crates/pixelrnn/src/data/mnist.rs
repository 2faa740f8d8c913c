//! MNIST-family datasets from IDX files: 256-level grey MNIST / Fashion-MNIST, and the paper's
//! binarized MNIST (Salakhutdinov & Murray 2008), read from its `.amat` files or made by a
//! fixed stochastic binarization of MNIST.

use std::path::{Path, PathBuf};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::idx::{read_images, read_labels};
use crate::data::image_set::{ImageSet, Splits};
use crate::error::{Error, Result};

/// The four files of an MNIST-format dataset, in the order (train images, train labels, test
/// images, test labels).
pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// The binarized MNIST files of Salakhutdinov & Murray (train, valid, test).
pub const AMAT_FILES: [&str; 3] =
    ["binarized_mnist_train.amat", "binarized_mnist_valid.amat", "binarized_mnist_test.amat"];

/// Seed of the fixed binarization (pixel ~ Bernoulli(v / 255)), used when the `.amat` files
/// are absent. Split `s` (0 train, 1 valid, 2 test) uses ChaCha8 seeded with `SEED + s`; pixel
/// i of the split is 1 iff `u_i * 255 < v * 2^32` for the i-th `next_u32` draw `u_i`, an integer
/// test, so the result is identical on every run and machine.
pub const BINARIZATION_SEED: u64 = 0x5049_5845_4c52_4e4e; // "PIXELRNN"

/// Finds an IDX file, accepting the `.gz` name or the uncompressed one.
pub fn find_idx(dir: &Path, name: &str) -> Option<PathBuf> {
    let gz = dir.join(name);
    let raw = dir.join(name.trim_end_matches(".gz"));
    [gz, raw].into_iter().find(|p| p.is_file())
}

fn require_idx(dir: &Path, name: &str) -> Result<PathBuf> {
    find_idx(dir, name).ok_or_else(|| {
        Error::dataset(
            dir.join(name),
            format!("missing (expected the four MNIST-format files {} in this folder)", IDX_FILES.join(", ")),
        )
    })
}

fn load_pair(images: &Path, labels: &Path) -> Result<ImageSet> {
    let (count, rows, cols, pixels) = read_images(images)?;
    let labels_v = read_labels(labels, 10)?;
    if labels_v.len() != count {
        return Err(Error::dataset(
            labels,
            format!("{} labels, but {} has {count} images", labels_v.len(), images.display()),
        ));
    }
    Ok(ImageSet { channels: 1, height: rows, width: cols, levels: 256, pixels, labels: Some(labels_v) })
}

/// 256-level MNIST-format data (MNIST or Fashion-MNIST): train/test as distributed.
pub fn load_grey(dir: &Path) -> Result<Splits> {
    let paths: Vec<PathBuf> = IDX_FILES.iter().map(|n| require_idx(dir, n)).collect::<Result<_>>()?;
    let train = load_pair(&paths[0], &paths[1])?;
    let test = load_pair(&paths[2], &paths[3])?;
    if (test.height, test.width) != (train.height, train.width) {
        return Err(Error::dataset(
            &paths[2],
            format!(
                "images are {}x{}, but the training images are {}x{}",
                test.height, test.width, train.height, train.width
            ),
        ));
    }
    Ok(Splits { train, valid: None, test: Some(test), files: paths, notes: vec![] })
}

/// Binarizes 256-level images with the fixed seed for `split_index` (see [`BINARIZATION_SEED`]).
pub fn binarize(set: &ImageSet, split_index: u64) -> ImageSet {
    let mut rng = ChaCha8Rng::seed_from_u64(BINARIZATION_SEED + split_index);
    let pixels = set.pixels.iter().map(|&v| ((rng.next_u32() as u64) * 255 < (v as u64) << 32) as u8).collect();
    ImageSet { pixels, levels: 2, labels: set.labels.clone(), ..*set }
}

fn read_amat(path: &Path) -> Result<ImageSet> {
    parse_amat(path, crate::data::files::read_file(path)?)
}

/// A binarized MNIST `.amat` file from its bytes (`path` names it in errors): lines of 784
/// values `0` or `1`.
pub fn parse_amat(path: &Path, bytes: Vec<u8>) -> Result<ImageSet> {
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::dataset(path, "not UTF-8 text (expected lines of 784 values 0 or 1)"))?;
    let mut pixels = Vec::with_capacity(text.len() / 2);
    for (line_no, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let before = pixels.len();
        for token in line.split_whitespace() {
            match token {
                "0" => pixels.push(0),
                "1" => pixels.push(1),
                other => {
                    return Err(Error::dataset(path, format!("line {}: value '{other}', expected 0 or 1", line_no + 1)))
                }
            }
        }
        if pixels.len() - before != 784 {
            return Err(Error::dataset(
                path,
                format!("line {}: {} values, expected 784", line_no + 1, pixels.len() - before),
            ));
        }
    }
    if pixels.is_empty() {
        return Err(Error::dataset(path, "no images (expected lines of 784 values)"));
    }
    Ok(ImageSet { channels: 1, height: 28, width: 28, levels: 2, pixels, labels: None })
}

/// Whether `dir` holds the three `.amat` files.
pub fn has_amat(dir: &Path) -> bool {
    AMAT_FILES.iter().all(|n| dir.join(n).is_file())
}

/// Binarized MNIST: the `.amat` files (50k/10k/10k) when present, otherwise the fixed
/// binarization of MNIST with train = first 50,000, valid = last 10,000 training images, test =
/// the 10,000 test images.
pub fn load_binarized(dir: &Path) -> Result<Splits> {
    if has_amat(dir) {
        let sets: Vec<ImageSet> = AMAT_FILES.iter().map(|n| read_amat(&dir.join(n))).collect::<Result<_>>()?;
        let mut sets = sets.into_iter();
        let mut next = || sets.next().expect("three amat files");
        return Ok(Splits {
            train: next(),
            valid: Some(next()),
            test: Some(next()),
            files: AMAT_FILES.iter().map(|n| dir.join(n)).collect(),
            notes: vec!["binarized MNIST of Salakhutdinov & Murray (.amat)".into()],
        });
    }
    let grey = load_grey(dir)?;
    let n = grey.train.len();
    let valid_count = 10_000.min(n / 6);
    let train = binarize(&grey.train.slice(0..n - valid_count), 0);
    let valid = binarize(&grey.train.slice(n - valid_count..n), 1);
    let test = grey.test.as_ref().map(|t| binarize(t, 2));
    Ok(Splits {
        train,
        valid: Some(valid),
        test,
        files: grey.files,
        notes: vec![format!(
            "fixed stochastic binarization of MNIST (seed {BINARIZATION_SEED:#x}); valid = last {valid_count} training images"
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::{encode_images, encode_labels, gzip};

    /// Writes a small MNIST-format dataset (gzip) with `n_train` / `n_test` images of 28x28.
    pub(crate) fn write_small_mnist(dir: &Path, n_train: usize, n_test: usize) {
        for (n, img, lab, seed) in [(n_train, IDX_FILES[0], IDX_FILES[1], 1u8), (n_test, IDX_FILES[2], IDX_FILES[3], 2)]
        {
            let pixels: Vec<u8> = (0..n * 784).map(|i| ((i * 31 + seed as usize * 7) % 256) as u8).collect();
            let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
            std::fs::write(dir.join(img), gzip(&encode_images(n, 28, 28, &pixels))).unwrap();
            std::fs::write(dir.join(lab), gzip(&encode_labels(&labels))).unwrap();
        }
    }

    #[test]
    fn grey_and_binarized_from_idx() {
        let dir = tempfile::tempdir().unwrap();
        write_small_mnist(dir.path(), 60, 20);
        let grey = load_grey(dir.path()).unwrap();
        assert_eq!((grey.train.len(), grey.test.as_ref().unwrap().len()), (60, 20));
        assert_eq!(grey.train.class_counts(), vec![6; 10]);
        let bin = load_binarized(dir.path()).unwrap();
        assert_eq!((bin.train.len(), bin.valid.as_ref().unwrap().len()), (50, 10));
        assert!(bin.train.pixels.iter().all(|&v| v <= 1));
        // Fixed: the same bits on every load.
        assert_eq!(load_binarized(dir.path()).unwrap().train.pixels, bin.train.pixels);
    }

    #[test]
    fn binarization_is_bernoulli_of_intensity() {
        let set = ImageSet { channels: 1, height: 100, width: 100, levels: 256, pixels: vec![0; 10000], labels: None };
        assert!(binarize(&set, 0).pixels.iter().all(|&v| v == 0));
        let full = ImageSet { pixels: vec![255; 10000], ..set.clone() };
        assert!(binarize(&full, 0).pixels.iter().all(|&v| v == 1));
        let mid = ImageSet { pixels: vec![64; 10000], ..set };
        let ones = binarize(&mid, 0).pixels.iter().filter(|&&v| v == 1).count();
        assert!((ones as f64 / 10000.0 - 64.0 / 255.0).abs() < 0.02, "{ones}");
    }

    #[test]
    fn amat_files_are_preferred_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let line = vec!["1"; 784].join(" ");
        for n in AMAT_FILES {
            std::fs::write(dir.path().join(n), format!("{line}\n{line}\n")).unwrap();
        }
        let s = load_binarized(dir.path()).unwrap();
        assert_eq!((s.train.len(), s.test.unwrap().len()), (2, 2));
        std::fs::write(dir.path().join(AMAT_FILES[1]), format!("{line}\n1 0 1\n")).unwrap();
        let err = load_binarized(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("binarized_mnist_valid.amat") && err.contains("line 2") && err.contains("expected 784"),
            "{err}"
        );
    }

    #[test]
    fn count_mismatch_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        write_small_mnist(dir.path(), 12, 4);
        std::fs::write(dir.path().join(IDX_FILES[1]), gzip(&encode_labels(&[1; 11]))).unwrap();
        let err = load_grey(dir.path()).unwrap_err().to_string();
        assert!(err.contains("11 labels") && err.contains("12 images"), "{err}");
        std::fs::remove_file(dir.path().join(IDX_FILES[2])).unwrap();
        let err = load_grey(dir.path()).unwrap_err().to_string();
        assert!(err.contains("t10k-images") && err.contains("missing"), "{err}");
    }
}

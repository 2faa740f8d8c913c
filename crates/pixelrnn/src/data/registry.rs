//! The named datasets: where their files live, how they are split, where they are fetched from.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::data::download::{fetch_remote, sha256_file, DownloadEvent, RemoteFile};
use crate::data::image_set::Splits;
use crate::data::{cifar, mnist, png_folder};
use crate::error::{Error, Result};

/// The datasets known by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// The paper's binarized MNIST (Table 4), 1x28x28, 2 levels.
    BinarizedMnist,
    /// MNIST, 256 grey levels.
    Mnist,
    /// Fashion-MNIST, 256 grey levels.
    FashionMnist,
    /// CIFAR-10, 3x32x32, 256 levels.
    Cifar10,
    /// Downsampled ImageNet 32x32 (van den Oord et al.).
    Imagenet32,
    /// Downsampled ImageNet 64x64.
    Imagenet64,
    /// Any folder of same-sized PNG images.
    Folder,
}

/// All names, in the order shown to users.
pub const DATASETS: [DatasetName; 7] = [
    DatasetName::BinarizedMnist,
    DatasetName::Mnist,
    DatasetName::FashionMnist,
    DatasetName::Cifar10,
    DatasetName::Imagenet32,
    DatasetName::Imagenet64,
    DatasetName::Folder,
];

impl DatasetName {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            DatasetName::BinarizedMnist => "binarized-mnist",
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Imagenet32 => "imagenet32",
            DatasetName::Imagenet64 => "imagenet64",
            DatasetName::Folder => "folder",
        }
    }

    /// The images of the dataset as distributed (`None` for a folder of PNGs: any size).
    pub fn image_spec(self) -> Option<crate::image_spec::ImageSpec> {
        use crate::image_spec::ImageSpec;
        match self {
            DatasetName::BinarizedMnist => Some(ImageSpec { channels: 1, height: 28, width: 28, levels: 2 }),
            DatasetName::Mnist | DatasetName::FashionMnist => {
                Some(ImageSpec { channels: 1, height: 28, width: 28, levels: 256 })
            }
            DatasetName::Cifar10 | DatasetName::Imagenet32 => {
                Some(ImageSpec { channels: 3, height: 32, width: 32, levels: 256 })
            }
            DatasetName::Imagenet64 => Some(ImageSpec { channels: 3, height: 64, width: 64, levels: 256 }),
            DatasetName::Folder => None,
        }
    }

    /// Default number of training images held out for validation when the files have no
    /// validation split.
    pub fn default_valid_size(self) -> usize {
        match self {
            DatasetName::BinarizedMnist => 0, // has its own 50k/10k/10k split
            DatasetName::Mnist | DatasetName::FashionMnist => 10_000,
            DatasetName::Cifar10 => 5_000,
            DatasetName::Imagenet32 | DatasetName::Imagenet64 => 10_000,
            DatasetName::Folder => 0, // 10% (see `load`)
        }
    }
}

impl FromStr for DatasetName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        DATASETS.into_iter().find(|d| d.name() == s).ok_or_else(|| {
            Error::Config(format!("unknown dataset '{s}' (expected one of: {})", DATASETS.map(|d| d.name()).join(", ")))
        })
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to load a dataset.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Training images to hold out as the validation split (`None`: the dataset's default).
    pub valid_size: Option<usize>,
    /// Replace the canonical download addresses by `MIRROR/FILE_NAME`.
    pub mirror: Option<String>,
    /// Skip the check of the files against their published SHA-256 (see [`verify_files`]).
    pub no_verify: bool,
}

/// The user cache of this tool: `$PIXELRNN_CACHE`, else `~/.cache/pixelrnn`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("PIXELRNN_CACHE")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("pixelrnn")))
        .unwrap_or_else(|| PathBuf::from(".pixelrnn-cache"))
}

/// Where a dataset's files are looked for when no `--data-dir` is given: Fashion-MNIST in the
/// Debian package's folder, the others in the user cache (`$PIXELRNN_CACHE` or
/// `~/.cache/pixelrnn`), `mnist/` shared by both MNIST views.
pub fn default_data_dir(name: DatasetName) -> PathBuf {
    if name == DatasetName::FashionMnist {
        return PathBuf::from("/usr/share/datasets/fashion-mnist");
    }
    let root = cache_root();
    let sub = match name {
        DatasetName::BinarizedMnist | DatasetName::Mnist => "mnist",
        other => other.name(),
    };
    root.join(sub)
}

const MNIST_SHA256: [&str; 4] = [
    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
];
const AMAT_SHA256: [&str; 3] = [
    "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
    "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
    "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
];
const CIFAR_ARCHIVE: &str = "cifar-10-binary.tar.gz";
const CIFAR_ARCHIVE_SHA256: &str = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd";
/// SHA-256 of the official `cifar-10-batches-bin` training files (measured on byte-identical
/// copies whose MD5s match the official archive's).
const CIFAR_SHA256: [&str; 5] = [
    "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
];

/// The published SHA-256 of a file of `dataset`, by file name, if known. Fashion-MNIST shares
/// MNIST's file names but not its contents, and Debian's copies are recompressed: none.
pub fn published_sha256(dataset: DatasetName, file_name: &str) -> Option<&'static str> {
    match dataset {
        DatasetName::FashionMnist | DatasetName::Folder | DatasetName::Imagenet32 | DatasetName::Imagenet64 => None,
        DatasetName::Mnist | DatasetName::BinarizedMnist | DatasetName::Cifar10 => known_sha256(file_name),
    }
}

/// Checks every file of `dir` that has a published checksum for `dataset` against it (see
/// [`verify_files`]): what `data fetch` does before it says a dataset is ready.
pub fn verify_present(dataset: DatasetName, dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| published_sha256(dataset, n).is_some()))
        .collect();
    files.sort();
    verify_files(dataset, &files)
}

/// The file in the user cache ([`cache_root`]) that remembers which dataset files were
/// verified: one line per file version, `SHA256 SIZE MTIME_NS ABSOLUTE_PATH`. Data folders are
/// never written to (they may be read-only or shared).
pub fn verified_cache() -> PathBuf {
    cache_root().join("verified.txt")
}

/// Checks every file of `files` that has a published checksum for `dataset` against it, once
/// per file version: a file whose path, size and modification time are in [`verified_cache`]
/// was verified before. A mismatch is an error naming the file (the caller's `--no-verify`
/// skips this). The cache is best-effort: where it cannot be written, files are verified on
/// every use.
pub fn verify_files(dataset: DatasetName, files: &[PathBuf]) -> Result<()> {
    let cache = verified_cache();
    let mut known: Vec<String> =
        std::fs::read_to_string(&cache).unwrap_or_default().lines().map(str::to_string).collect();
    for path in files.iter().filter(|p| p.is_file()) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(expected) = published_sha256(dataset, &name) else { continue };
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mtime =
            meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let key = format!("{expected} {} {mtime} {}", meta.len(), absolute.display());
        if known.contains(&key) {
            continue;
        }
        let got = sha256_file(path)?;
        if got != expected {
            return Err(Error::dataset(
                path,
                format!(
                    "SHA-256 {got} differs from the published {expected}: the file is damaged or not the original (fetch it again, or pass --no-verify to use it as it is)"
                ),
            ));
        }
        remember(&mut known, key, &absolute);
        let text = known.join("\n") + "\n";
        if std::fs::create_dir_all(cache_root()).is_ok() {
            let _ = crate::fsio::write_atomic(&cache, text.as_bytes());
        }
    }
    Ok(())
}

/// Adds `key` (a line of [`verified_cache`]) for the file at `absolute` to `known`, in place of
/// that file's earlier versions, and forgets the lines of files that are gone (test folders,
/// moved data), so the cache does not grow without end.
fn remember(known: &mut Vec<String>, key: String, absolute: &Path) {
    let suffix = format!(" {}", absolute.display());
    known.retain(|line| {
        let path = line.splitn(4, ' ').nth(3).map(Path::new);
        !line.ends_with(&suffix) && path.is_some_and(Path::exists)
    });
    known.push(key);
}

/// The published SHA-256 of a distributed file, by file name, if known.
pub fn known_sha256(file_name: &str) -> Option<&'static str> {
    let tables: [(&[&str], &[&str]); 4] = [
        (&mnist::IDX_FILES, &MNIST_SHA256),
        (&mnist::AMAT_FILES, &AMAT_SHA256),
        (&cifar::TRAIN_FILES, &CIFAR_SHA256),
        (&[CIFAR_ARCHIVE], &[CIFAR_ARCHIVE_SHA256]),
    ];
    tables.iter().find_map(|(names, sums)| names.iter().position(|n| *n == file_name).map(|i| sums[i]))
}

fn remote(name: &'static str, bases: &[&str], mirror: &Option<String>) -> RemoteFile {
    let urls = match mirror {
        Some(m) => vec![format!("{}/{name}", m.trim_end_matches('/'))],
        None => bases.iter().map(|b| format!("{b}{name}")).collect(),
    };
    RemoteFile {
        name,
        urls,
        sha256: known_sha256(name).expect("every remote file has a known checksum"),
        max_bytes: max_download_bytes(name),
    }
}

/// The most bytes a download of `file_name` may take: the published size of MNIST's files and
/// the CIFAR-10 archive; for the binarized-MNIST `.amat` files (1,568 bytes per image line:
/// 784 values and their separators) the size of their lines, with 1% to spare.
pub fn max_download_bytes(file_name: &str) -> u64 {
    match file_name {
        "train-images-idx3-ubyte.gz" => 9_912_422,
        "train-labels-idx1-ubyte.gz" => 28_881,
        "t10k-images-idx3-ubyte.gz" => 1_648_877,
        "t10k-labels-idx1-ubyte.gz" => 4_542,
        CIFAR_ARCHIVE => 170_498_071,
        name if name.contains("train") => 50_000 * 1_568 * 101 / 100,
        _ => 10_000 * 1_568 * 101 / 100,
    }
}

/// The files `name` is downloaded as, if it has canonical addresses.
pub fn remote_files(name: DatasetName, mirror: &Option<String>) -> Vec<RemoteFile> {
    match name {
        DatasetName::Mnist => mnist::IDX_FILES
            .iter()
            .map(|f| {
                remote(
                    f,
                    &[
                        "https://storage.googleapis.com/cvdf-datasets/mnist/",
                        "https://ossci-datasets.s3.amazonaws.com/mnist/",
                    ],
                    mirror,
                )
            })
            .collect(),
        DatasetName::BinarizedMnist => mnist::AMAT_FILES
            .iter()
            .map(|f| remote(f, &["http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"], mirror))
            .collect(),
        DatasetName::Cifar10 => vec![remote(CIFAR_ARCHIVE, &["https://www.cs.toronto.edu/~kriz/"], mirror)],
        _ => Vec::new(),
    }
}

/// Whether the files `load` needs are in `dir`.
pub fn is_present(name: DatasetName, dir: &Path) -> bool {
    let idx = || mnist::IDX_FILES.iter().all(|f| mnist::find_idx(dir, f).is_some());
    match name {
        DatasetName::BinarizedMnist => mnist::has_amat(dir) || idx(),
        DatasetName::Mnist | DatasetName::FashionMnist => idx(),
        DatasetName::Cifar10 => cifar::present(dir),
        DatasetName::Imagenet32 | DatasetName::Imagenet64 => imagenet_path(name, dir, "train").is_some(),
        DatasetName::Folder => dir.is_dir(),
    }
}

/// Downloads `name` into `dir` unless its files are already there.
pub fn ensure_present(
    name: DatasetName,
    dir: &Path,
    options: &LoadOptions,
    observer: &mut dyn FnMut(DownloadEvent),
) -> Result<()> {
    if is_present(name, dir) {
        return Ok(());
    }
    let files = remote_files(name, &options.mirror);
    if files.is_empty() {
        let hint = match name {
            DatasetName::FashionMnist => {
                "install the Debian package dataset-fashion-mnist or pass --data-dir".to_string()
            }
            DatasetName::Imagenet32 | DatasetName::Imagenet64 => {
                let s = if name == DatasetName::Imagenet32 { 32 } else { 64 };
                format!("expected train_{s}x{s}/ and valid_{s}x{s}/ (folders of PNGs or .tar files); it has no canonical download address")
            }
            _ => "pass --data-dir with the folder of PNG images".to_string(),
        };
        return Err(Error::dataset(dir, format!("{name} not found: {hint}")));
    }
    for file in &files {
        fetch_remote(file, dir, observer)?;
    }
    if name == DatasetName::Cifar10 {
        extract_cifar(&dir.join(CIFAR_ARCHIVE), dir)?;
    }
    Ok(())
}

/// Unpacks the `.bin` files of the CIFAR-10 archive into `dir` (each via a temporary name).
fn extract_cifar(archive: &Path, dir: &Path) -> Result<()> {
    use std::io::Read;
    let file = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let bad = |e: std::io::Error| Error::dataset(archive, format!("corrupt archive: {e}"));
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        if !name.ends_with(".bin") {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(bad)?;
        let tmp = dir.join(format!("{name}.part"));
        std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, dir.join(&name)).map_err(|e| Error::io(dir.join(&name), e))?;
    }
    Ok(())
}

fn imagenet_path(name: DatasetName, dir: &Path, part: &str) -> Option<PathBuf> {
    let s = if name == DatasetName::Imagenet32 { 32 } else { 64 };
    let base = dir.join(format!("{part}_{s}x{s}"));
    [base.clone(), base.with_extension("tar")].into_iter().find(|p| p.exists())
}

/// Loads the splits of `name` from `dir` (no download; see [`ensure_present`]).
///
/// Splits: binarized MNIST 50k/10k/10k; MNIST and Fashion-MNIST train/test as distributed with
/// the last `valid_size` training images held out; CIFAR-10 the five training files (valid =
/// last 5,000 by default) and `test_batch.bin` when present; ImageNet `train_NxN` (valid held
/// out from it) and `valid_NxN` as the test split (as in the paper); a folder either `train/`
/// and `test/` sub-folders or all PNGs in it, with 10% held out.
pub fn load(name: DatasetName, dir: &Path, options: &LoadOptions) -> Result<Splits> {
    let splits = load_unverified(name, dir, options)?;
    if !options.no_verify {
        verify_files(name, &splits.files)?;
    }
    Ok(splits)
}

fn load_unverified(name: DatasetName, dir: &Path, options: &LoadOptions) -> Result<Splits> {
    let valid = options.valid_size.unwrap_or(name.default_valid_size());
    let splits = match name {
        DatasetName::BinarizedMnist => {
            let s = mnist::load_binarized(dir)?;
            return if options.valid_size.is_some_and(|v| v != s.valid.as_ref().map_or(0, |v| v.len())) {
                Err(Error::Config("binarized-mnist has a fixed 50k/10k/10k split; --valid-size does not apply".into()))
            } else {
                Ok(s)
            };
        }
        DatasetName::Mnist | DatasetName::FashionMnist => mnist::load_grey(dir)?,
        DatasetName::Cifar10 => cifar::load(dir)?,
        DatasetName::Imagenet32 | DatasetName::Imagenet64 => {
            let size = if name == DatasetName::Imagenet32 { 32 } else { 64 };
            let train_path = imagenet_path(name, dir, "train")
                .ok_or_else(|| Error::dataset(dir, format!("missing train_{size}x{size} (folder of PNGs or .tar)")))?;
            // Both parts must be size x size RGB.
            let load_checked = |path: &Path| -> Result<crate::data::ImageSet> {
                let set = png_folder::load_dir_or_tar(path)?;
                if (set.height, set.width, set.channels) != (size, size, 3) {
                    return Err(Error::dataset(
                        path,
                        format!(
                            "images are {}x{} with {} channel(s), expected {size}x{size} RGB",
                            set.width, set.height, set.channels
                        ),
                    ));
                }
                Ok(set)
            };
            let train = load_checked(&train_path)?;
            let mut files = vec![train_path];
            let test = match imagenet_path(name, dir, "valid") {
                Some(p) => {
                    let t = load_checked(&p)?;
                    files.push(p);
                    Some(t)
                }
                None => None,
            };
            let valid_count = valid.min(train.len() / 10);
            let notes = vec!["test = the official validation images (as in the paper)".to_string()];
            return Splits { train, valid: None, test, files, notes }.hold_out(valid_count);
        }
        DatasetName::Folder => {
            let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
            let (train, test, files) = if train_dir.is_dir() {
                let train = png_folder::load_dir(&train_dir)?;
                let test = if test_dir.is_dir() { Some(png_folder::load_dir(&test_dir)?) } else { None };
                if let Some(t) = &test {
                    if (t.channels, t.height, t.width) != (train.channels, train.height, train.width) {
                        return Err(Error::dataset(
                            &test_dir,
                            format!(
                                "images are {}x{} with {} channel(s), but train/ has {}x{} with {}",
                                t.width, t.height, t.channels, train.width, train.height, train.channels
                            ),
                        ));
                    }
                }
                (train, test, vec![train_dir, test_dir])
            } else {
                (png_folder::load_dir(dir)?, None, vec![dir.to_path_buf()])
            };
            let valid_count = options.valid_size.unwrap_or(train.len() / 10);
            return Splits { train, valid: None, test, files, notes: vec![] }.hold_out(valid_count);
        }
    };
    splits.hold_out(valid)
}

/// Checksum status of a file of `dataset`: `"ok"`, `"MISMATCH (expected ..)"` or `"no
/// published checksum"`.
pub fn checksum_status(dataset: DatasetName, path: &Path) -> Result<String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(match published_sha256(dataset, &name) {
        Some(expected) => {
            let got = sha256_file(path)?;
            if got == expected {
                "ok (SHA-256 matches the reference checksum)".to_string()
            } else {
                format!("MISMATCH: SHA-256 {got}, published {expected}")
            }
        }
        None => "no published checksum".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verified_cache_forgets_files_that_are_gone_and_older_versions() {
        let dir = tempfile::tempdir().unwrap();
        let (here, gone) = (dir.path().join("here.gz"), dir.path().join("gone.gz"));
        std::fs::write(&here, b"x").unwrap();
        let line = |sum: &str, path: &Path| format!("{sum} 1 7 {}", path.display());
        let mut known = vec![line("a", &here), line("b", &gone), "a torn line".to_string()];
        remember(&mut known, line("c", &here), &here);
        assert_eq!(known, vec![line("c", &here)]);
    }

    #[test]
    fn cifar_archive_is_extracted_flat() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let record: Vec<u8> = std::iter::once(3u8).chain(std::iter::repeat_n(7u8, cifar::RECORD - 1)).collect();
        for name in cifar::TRAIN_FILES.iter().chain([&cifar::TEST_FILE, &"batches.meta.txt"]) {
            let body = if name.ends_with(".bin") { record.clone() } else { b"airplane\n".to_vec() };
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_cksum();
            builder.append_data(&mut header, format!("cifar-10-batches-bin/{name}"), &body[..]).unwrap();
        }
        let archive = dir.path().join(CIFAR_ARCHIVE);
        std::fs::write(&archive, builder.into_inner().unwrap().finish().unwrap()).unwrap();
        extract_cifar(&archive, dir.path()).unwrap();
        assert!(is_present(DatasetName::Cifar10, dir.path()));
        // Files with the official names but other contents: loaded only when not verified.
        let options = LoadOptions { valid_size: Some(1), mirror: None, no_verify: false };
        let err = load(DatasetName::Cifar10, dir.path(), &options).unwrap_err().to_string();
        assert!(
            err.contains("data_batch_1.bin")
                && err.contains("differs from the published")
                && err.contains("--no-verify"),
            "{err}"
        );
        let s = load(DatasetName::Cifar10, dir.path(), &LoadOptions { no_verify: true, ..options }).unwrap();
        assert_eq!((s.train.len(), s.valid.unwrap().len(), s.test.unwrap().len()), (4, 1, 1));
        std::fs::write(&archive, b"not gzip").unwrap();
        assert!(extract_cifar(&archive, dir.path()).unwrap_err().to_string().contains("corrupt archive"));
    }

    #[test]
    fn names_round_trip() {
        for d in DATASETS {
            assert_eq!(d.name().parse::<DatasetName>().unwrap(), d);
        }
        assert!("svhn".parse::<DatasetName>().unwrap_err().to_string().contains("binarized-mnist"));
    }

    #[test]
    fn folder_splits_and_missing_data() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..20u8 {
            std::fs::write(dir.path().join(format!("{i:02}.png")), crate::png::encode_png(1, 3, 3, &[i; 9])).unwrap();
        }
        let s = load(DatasetName::Folder, dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!((s.train.len(), s.valid.as_ref().unwrap().len()), (18, 2));
        assert!(s.get(crate::data::Split::Test).unwrap_err().to_string().contains("no test split"));
        let empty = tempfile::tempdir().unwrap();
        let err =
            ensure_present(DatasetName::Imagenet32, empty.path(), &LoadOptions::default(), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("train_32x32"), "{err}");
    }

    #[test]
    fn imagenet_layout_with_wrong_size_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let train = dir.path().join("train_32x32");
        std::fs::create_dir(&train).unwrap();
        std::fs::write(train.join("a.png"), crate::png::encode_png(3, 8, 8, &[0; 192])).unwrap();
        let err = load(DatasetName::Imagenet32, dir.path(), &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("expected 32x32 RGB") && err.contains("train_32x32"), "{err}");
    }

    #[test]
    fn real_files_when_present() {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
        if !shared.is_dir() {
            eprintln!("skipped: {} not present (real-data checks need ../shared/data)", shared.display());
            return;
        }
        let mnist_dir = shared.join("mnist");
        for f in mnist::IDX_FILES {
            assert!(checksum_status(DatasetName::Mnist, &mnist_dir.join(f)).unwrap().starts_with("ok"), "{f}");
        }
        let m =
            load(DatasetName::Mnist, &mnist_dir, &LoadOptions { valid_size: Some(0), mirror: None, no_verify: false })
                .unwrap();
        assert_eq!((m.train.len(), m.test.as_ref().unwrap().len()), (60_000, 10_000));
        assert_eq!(m.train.class_counts(), vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
        assert_eq!(
            m.test.as_ref().unwrap().class_counts(),
            vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
        let b = load(DatasetName::BinarizedMnist, &mnist_dir, &LoadOptions::default()).unwrap();
        assert_eq!(
            (b.train.len(), b.valid.as_ref().unwrap().len(), b.test.as_ref().unwrap().len()),
            (50_000, 10_000, 10_000)
        );
        let c = load(
            DatasetName::Cifar10,
            &shared.join("cifar10"),
            &LoadOptions { valid_size: Some(0), mirror: None, no_verify: false },
        )
        .unwrap();
        assert_eq!(c.train.len(), 50_000);
        assert_eq!(c.train.class_counts(), vec![5000; 10]);
        for f in cifar::TRAIN_FILES {
            assert!(
                checksum_status(DatasetName::Cifar10, &shared.join("cifar10").join(f)).unwrap().starts_with("ok"),
                "{f}"
            );
        }
    }

    #[test]
    fn fashion_mnist_from_the_debian_package_when_installed() {
        let dir = default_data_dir(DatasetName::FashionMnist);
        if !is_present(DatasetName::FashionMnist, &dir) {
            eprintln!("skipped: {} not present (apt-get install dataset-fashion-mnist)", dir.display());
            return;
        }
        let f = load(DatasetName::FashionMnist, &dir, &LoadOptions::default()).unwrap();
        assert_eq!(
            (f.train.len(), f.valid.as_ref().unwrap().len(), f.test.as_ref().unwrap().len()),
            (50_000, 10_000, 10_000)
        );
        assert_eq!(f.test.as_ref().unwrap().class_counts(), vec![1000; 10]);
        let mut all = f.train.class_counts();
        for (a, b) in all.iter_mut().zip(f.valid.as_ref().unwrap().class_counts()) {
            *a += b;
        }
        assert_eq!(all, vec![6000; 10]);
    }
}

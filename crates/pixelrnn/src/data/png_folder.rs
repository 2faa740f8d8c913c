//! Images stored as PNG files: a folder of PNGs, or a `.tar` of them (the downsampled ImageNet
//! of the paper is distributed as `train_32x32.tar` / `valid_32x32.tar` and the 64x64 pair).
//! All images must have one size and be grey (1 channel) or RGB (3 channels), 8 bits deep
//! (palette and low-bit grey are expanded; 16-bit is reduced to 8).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::data::image_set::ImageSet;
use crate::error::{Error, Result};
use crate::png::decode_png;

/// Collects decoded images, requiring one size and channel count throughout.
struct Collector {
    shape: Option<(usize, usize, usize, PathBuf)>,
    pixels: Vec<u8>,
}

impl Collector {
    fn push(&mut self, name: &Path, bytes: &[u8]) -> Result<()> {
        let (c, h, w, planar) = decode_png(bytes, name)?;
        match &self.shape {
            None => self.shape = Some((c, h, w, name.to_path_buf())),
            Some((c0, h0, w0, first)) if (*c0, *h0, *w0) != (c, h, w) => {
                return Err(Error::dataset(
                    name,
                    format!(
                    "{w}x{h} with {c} channel(s), expected {w0}x{h0} with {c0} channel(s) like {} (mixed image sizes)",
                    first.display()
                ),
                ))
            }
            Some(_) => {}
        }
        self.pixels.extend(planar);
        Ok(())
    }

    fn finish(self, source: &Path) -> Result<ImageSet> {
        let (channels, height, width, _) = self.shape.ok_or_else(|| Error::dataset(source, "no PNG images found"))?;
        Ok(ImageSet { channels, height, width, levels: 256, pixels: self.pixels, labels: None })
    }
}

fn is_png(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

/// Images from `(name, PNG bytes)` in the given order: one size and channel count throughout
/// (what a folder of PNGs holds; `source` names the whole in errors).
pub fn from_pngs<'a>(source: &Path, files: impl IntoIterator<Item = (&'a Path, &'a [u8])>) -> Result<ImageSet> {
    let mut collector = Collector { shape: None, pixels: Vec::new() };
    for (name, bytes) in files {
        collector.push(name, bytes)?;
    }
    collector.finish(source)
}

/// All `.png` files directly in `dir`, in name order. Every `.png` entry must be a readable
/// regular file (symbolic links followed): a dangling link, a link loop or a folder named
/// `*.png` is an error naming it, not an image silently left out.
pub fn load_dir(dir: &Path) -> Result<ImageSet> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()).map_err(|err| Error::io(dir, err)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|p| is_png(p))
        .collect();
    paths.sort();
    let mut collector = Collector { shape: None, pixels: Vec::new() };
    for path in &paths {
        let bytes = crate::data::files::read_file(path)?;
        collector.push(path, &bytes)?;
    }
    collector.finish(dir)
}

/// All `.png` members of a tar file, in name order.
pub fn load_tar(path: &Path) -> Result<ImageSet> {
    crate::data::files::checked_len(path)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    tar_from(path, std::io::BufReader::new(file))
}

/// [`load_tar`] from a stream (`path` names it in errors).
pub fn tar_from(path: &Path, reader: impl Read) -> Result<ImageSet> {
    let mut archive = tar::Archive::new(reader);
    // The tar reader quotes the bytes it could not read: escaped, so that a damaged archive
    // prints one readable line, not binary garbage.
    let bad =
        |e: std::io::Error| Error::dataset(path, format!("corrupt tar archive: {}", e.to_string().escape_debug()));
    let mut members = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.into_owned();
        if entry.header().entry_type().is_file() && is_png(&name) {
            let limit = crate::data::files::MAX_DATA_BYTES;
            if entry.size() > limit {
                return Err(Error::dataset(
                    path,
                    format!(
                        "member {} claims {} bytes, more than the limit of {limit}",
                        name.display().to_string().escape_debug(),
                        entry.size()
                    ),
                ));
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(bad)?;
            members.push((name, bytes));
        }
    }
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let mut collector = Collector { shape: None, pixels: Vec::new() };
    for (name, bytes) in &members {
        collector.push(&path.join(name), bytes)?;
    }
    collector.finish(path)
}

/// A folder of PNGs or a tar of PNGs, whichever `path` is (`path` or `path.tar`).
pub fn load_dir_or_tar(path: &Path) -> Result<ImageSet> {
    let tar = path.with_extension("tar");
    if path.is_dir() {
        load_dir(path)
    } else if path.is_file() {
        load_tar(path)
    } else if tar.is_file() {
        load_tar(&tar)
    } else {
        Err(Error::dataset(path, "missing (expected a folder of PNG files or a .tar of them)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::png::encode_png;

    #[test]
    fn a_tar_of_random_bytes_is_one_readable_line() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let bytes: Vec<u8> = (0..8192)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect();
        let err = tar_from(Path::new("random.tar"), &bytes[..]).expect_err("refused").to_string();
        assert!(err.contains("random.tar"), "{err}");
        assert!(err.chars().all(|c| !c.is_control()), "no control characters: {err:?}");
    }

    #[test]
    fn png_round_trip_grey_and_rgb() {
        for c in [1, 3] {
            let planar: Vec<u8> = (0..c * 4 * 5).map(|v| (v * 11 % 256) as u8).collect();
            let bytes = encode_png(c, 4, 5, &planar);
            let (c2, h, w, back) = decode_png(&bytes, Path::new("x.png")).unwrap();
            assert_eq!((c2, h, w), (c, 4, 5));
            assert_eq!(back, planar);
        }
    }

    #[test]
    fn folder_and_tar_load_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let imgs = dir.path().join("imgs");
        std::fs::create_dir(&imgs).unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        for i in [2u8, 0, 1] {
            let bytes = encode_png(3, 2, 2, &[i; 12]);
            std::fs::write(imgs.join(format!("{i}.png")), &bytes).unwrap();
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_cksum();
            builder.append_data(&mut header, format!("train/{i}.png"), &bytes[..]).unwrap();
        }
        std::fs::write(imgs.join("notes.txt"), "ignored").unwrap();
        std::fs::write(dir.path().join("imgs.tar"), builder.into_inner().unwrap()).unwrap();
        for set in [load_dir(&imgs).unwrap(), load_tar(&dir.path().join("imgs.tar")).unwrap()] {
            assert_eq!(set.len(), 3);
            assert_eq!((set.channels, set.height, set.width), (3, 2, 2));
            assert_eq!(set.image(2)[0], 2);
        }
    }

    #[test]
    fn mixed_sizes_unreadable_and_alpha_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), encode_png(1, 2, 2, &[0; 4])).unwrap();
        std::fs::write(dir.path().join("b.png"), encode_png(1, 3, 2, &[0; 6])).unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("b.png") && err.contains("mixed image sizes") && err.contains("expected 2x2"), "{err}");
        std::fs::write(dir.path().join("b.png"), b"not a png").unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("b.png") && err.contains("unreadable PNG"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert!(load_dir(empty.path()).unwrap_err().to_string().contains("no PNG images"));
    }

    #[cfg(unix)]
    #[test]
    fn link_loops_dangling_links_and_folders_named_png_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), encode_png(1, 2, 2, &[0; 4])).unwrap();
        std::os::unix::fs::symlink(dir.path().join("b.png"), dir.path().join("c.png")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("c.png"), dir.path().join("b.png")).unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("b.png"), "{err}");
        for name in ["b.png", "c.png"] {
            std::fs::remove_file(dir.path().join(name)).unwrap();
        }
        std::os::unix::fs::symlink(dir.path().join("gone.png"), dir.path().join("d.png")).unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("d.png"), "{err}");
        std::fs::remove_file(dir.path().join("d.png")).unwrap();
        std::fs::create_dir(dir.path().join("e.png")).unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("e.png") && err.contains("not a regular file"), "{err}");
    }
}

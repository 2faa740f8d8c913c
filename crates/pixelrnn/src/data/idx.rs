//! The IDX format of MNIST and Fashion-MNIST (<http://yann.lecun.com/exdb/mnist/>): a
//! big-endian u32 header (magic 2051 images / 2049 labels, count, rows, cols), then u8 data;
//! read raw or gzip-compressed (by content, not name).

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Reads a whole file, gunzipping it if it starts with the gzip magic bytes.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::dataset(path, format!("gzip data does not decompress: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn header(path: &Path, bytes: &[u8], words: usize) -> Result<Vec<u32>> {
    if bytes.len() < 4 * words {
        return Err(Error::dataset(
            path,
            format!("truncated IDX header: {} bytes, expected at least {}", bytes.len(), 4 * words),
        ));
    }
    Ok((0..words).map(|i| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes"))).collect())
}

/// IDX images: `(count, rows, cols, pixels)` after checking magic 2051 and the exact size.
pub fn read_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let bytes = read_maybe_gzip(path)?;
    let magic = header(path, &bytes, 1)?[0];
    if magic != 2051 {
        return Err(Error::dataset(path, format!("wrong magic number {magic}, expected 2051 (IDX images)")));
    }
    let h = header(path, &bytes, 4)?;
    let (count, rows, cols) = (h[1] as usize, h[2] as usize, h[3] as usize);
    let expected = 16 + count * rows * cols;
    if bytes.len() != expected {
        return Err(Error::dataset(
            path,
            format!(
                "{} bytes, expected {expected} for {count} images of {rows}x{cols} (truncated or corrupt)",
                bytes.len()
            ),
        ));
    }
    Ok((count, rows, cols, bytes[16..].to_vec()))
}

/// IDX labels after checking magic 2049 and the exact size.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_maybe_gzip(path)?;
    let magic = header(path, &bytes, 1)?[0];
    if magic != 2049 {
        return Err(Error::dataset(path, format!("wrong magic number {magic}, expected 2049 (IDX labels)")));
    }
    let h = header(path, &bytes, 2)?;
    let count = h[1] as usize;
    if bytes.len() != 8 + count {
        return Err(Error::dataset(
            path,
            format!("{} bytes, expected {} for {count} labels (truncated or corrupt)", bytes.len(), 8 + count),
        ));
    }
    Ok(bytes[8..].to_vec())
}

/// Writes IDX files (used by tests and by users converting their own data).
pub fn encode_images(count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [2051u32, count as u32, rows as u32, cols as u32] {
        out.extend(v.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// IDX label file bytes.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    for v in [2049u32, labels.len() as u32] {
        out.extend(v.to_be_bytes());
    }
    out.extend_from_slice(labels);
    out
}

/// Gzip-compresses bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("writing to a Vec cannot fail");
    e.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_raw_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|v| v as u8).collect();
        let raw = encode_images(2, 3, 4, &pixels);
        for (name, bytes) in [("a", raw.clone()), ("b.gz", gzip(&raw))] {
            let (n, r, c, p) = read_images(&write(dir.path(), name, &bytes)).unwrap();
            assert_eq!((n, r, c), (2, 3, 4));
            assert_eq!(p, pixels);
        }
        assert_eq!(read_labels(&write(dir.path(), "l", &encode_labels(&[3, 1]))).unwrap(), vec![3, 1]);
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let raw = encode_images(2, 3, 4, &[0; 24]);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("truncated", raw[..30].to_vec(), "expected 40"),
            ("short-header", raw[..10].to_vec(), "truncated IDX header"),
            ("labels-as-images", encode_labels(&[1, 2]), "wrong magic number 2049, expected 2051"),
            (
                "bad.gz",
                {
                    let mut g = gzip(&raw);
                    let n = g.len();
                    g.truncate(n / 2);
                    g
                },
                "does not decompress",
            ),
        ];
        for (name, bytes, expect) in cases {
            let p = write(dir.path(), name, &bytes);
            let err = read_images(&p).unwrap_err().to_string();
            assert!(err.contains(expect) && err.contains(name), "{name}: {err}");
        }
        let p = write(dir.path(), "img-as-labels", &raw);
        assert!(read_labels(&p).unwrap_err().to_string().contains("expected 2049"));
    }
}

//! The IDX format of MNIST and Fashion-MNIST (<http://yann.lecun.com/exdb/mnist/>): a
//! big-endian u32 header (magic 2051 images / 2049 labels, count, rows, cols), then u8 data;
//! read raw or gzip-compressed (by content, not name).

use std::io::Read;
use std::path::Path;

use crate::data::files::{checked_len, MAX_DATA_BYTES};
use crate::error::{Error, Result};

/// A dataset file as a byte stream, gunzipped if it starts with the gzip magic bytes; refused
/// when it is not a regular file or larger than [`MAX_DATA_BYTES`].
pub fn open_maybe_gzip(path: &Path) -> Result<Box<dyn Read>> {
    checked_len(path)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    maybe_gunzip(std::io::BufReader::new(file)).map_err(|e| Error::io(path, e))
}

/// `stream`, gunzipped if it starts with the gzip magic bytes.
pub fn maybe_gunzip(mut stream: impl Read + 'static) -> std::io::Result<Box<dyn Read>> {
    let mut magic = Vec::with_capacity(2);
    stream.by_ref().take(2).read_to_end(&mut magic)?;
    let gzip = magic == [0x1f, 0x8b];
    let stream = std::io::Cursor::new(magic).chain(stream);
    Ok(if gzip { Box::new(flate2::read::MultiGzDecoder::new(stream)) } else { Box::new(stream) })
}

/// Reads exactly `want` bytes of `reader` (the rest of a file whose header said how much
/// follows), then checks that nothing follows: memory grows only with data that is there.
fn read_body(path: &Path, reader: &mut dyn Read, want: u64, what: &str) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    reader
        .take(want.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| Error::dataset(path, format!("data does not read or decompress: {e}")))?;
    if body.len() as u64 != want {
        let (got, more) = if body.len() as u64 > want {
            ("more".to_string(), " (trailing data)")
        } else {
            (body.len().to_string(), " (truncated or corrupt)")
        };
        return Err(Error::dataset(
            path,
            format!("{got} bytes of data after the header, expected {want} for {what}{more}"),
        ));
    }
    Ok(body)
}

/// Reads `words` big-endian u32 of the header.
fn header(path: &Path, reader: &mut dyn Read, words: usize) -> Result<Vec<u32>> {
    let mut bytes = Vec::with_capacity(4 * words);
    reader
        .take(4 * words as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::dataset(path, format!("gzip data does not decompress: {e}")))?;
    let got = bytes.len();
    if got < 4 * words {
        return Err(Error::dataset(
            path,
            format!("truncated IDX header: {got} bytes, expected at least {}", 4 * words),
        ));
    }
    Ok(bytes.chunks_exact(4).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes"))).collect())
}

/// IDX images: `(count, rows, cols, pixels)` after checking magic 2051 and the exact size
/// (computed with checked arithmetic and bounded by [`MAX_DATA_BYTES`] before any is read).
pub fn read_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    images_from(path, &mut open_maybe_gzip(path)?)
}

/// [`read_images`] from a stream (`path` names it in errors).
pub fn images_from(path: &Path, reader: &mut dyn Read) -> Result<(usize, usize, usize, Vec<u8>)> {
    let reader = &mut *reader;
    let h = header(path, reader, 1)?;
    if h[0] != 2051 {
        return Err(Error::dataset(path, format!("wrong magic number {}, expected 2051 (IDX images)", h[0])));
    }
    let h = header(path, reader, 3)?;
    let (count, rows, cols) = (h[0] as u64, h[1] as u64, h[2] as u64);
    let size = count.checked_mul(rows).and_then(|v| v.checked_mul(cols)).filter(|&v| v <= MAX_DATA_BYTES);
    let Some(size) = size else {
        return Err(Error::dataset(
            path,
            format!("header says {count} images of {rows}x{cols}: more than the limit of {MAX_DATA_BYTES} bytes (corrupt header)"),
        ));
    };
    let pixels = read_body(path, reader, size, &format!("{count} images of {rows}x{cols}"))?;
    Ok((count as usize, rows as usize, cols as usize, pixels))
}

/// IDX labels after checking magic 2049, the exact size and that every label is below
/// `classes`.
pub fn read_labels(path: &Path, classes: u8) -> Result<Vec<u8>> {
    labels_from(path, &mut open_maybe_gzip(path)?, classes)
}

/// [`read_labels`] from a stream (`path` names it in errors).
pub fn labels_from(path: &Path, reader: &mut dyn Read, classes: u8) -> Result<Vec<u8>> {
    let reader = &mut *reader;
    let h = header(path, reader, 1)?;
    if h[0] != 2049 {
        return Err(Error::dataset(path, format!("wrong magic number {}, expected 2049 (IDX labels)", h[0])));
    }
    let count = header(path, reader, 1)?[0] as u64;
    let labels = read_body(path, reader, count, &format!("{count} labels"))?;
    if let Some((i, label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(Error::dataset(
            path,
            format!("label {i} is {label}, outside 0..={} (corrupt labels)", classes - 1),
        ));
    }
    Ok(labels)
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
        assert_eq!(read_labels(&write(dir.path(), "l", &encode_labels(&[3, 1])), 10).unwrap(), vec![3, 1]);
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let raw = encode_images(2, 3, 4, &[0; 24]);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("truncated", raw[..30].to_vec(), "14 bytes of data after the header, expected 24 for 2 images of 3x4"),
            ("trailing", [raw.clone(), vec![0]].concat(), "(trailing data)"),
            (
                // count x rows x cols overflows 64 bits: refused before reading.
                "overflow",
                [2051u32, u32::MAX, u32::MAX, u32::MAX].iter().flat_map(|v| v.to_be_bytes()).collect(),
                "more than the limit",
            ),
            (
                // A gzip bomb: a small file that decompresses to far more than its header says.
                "bomb.gz",
                gzip(&[encode_images(1, 28, 28, &[0; 784]), vec![0; 50 << 20]].concat()),
                "(trailing data)",
            ),
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
        assert!(read_labels(&p, 10).unwrap_err().to_string().contains("expected 2049"));
        let p = write(dir.path(), "label-12", &encode_labels(&[3, 12]));
        let err = read_labels(&p, 10).unwrap_err().to_string();
        assert!(err.contains("label 1 is 12, outside 0..=9") && err.contains("label-12"), "{err}");
        let err = read_images(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        #[cfg(unix)]
        {
            let err = read_images(Path::new("/dev/zero")).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
    }
}

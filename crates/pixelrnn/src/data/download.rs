//! Verified, resumable downloads. Bytes go to `NAME.part`; an interrupted download resumes
//! from there with an HTTP range request; the SHA-256 is checked before the file is renamed to
//! its final name, so a file under the final name is always complete and verified.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A file of a dataset with its canonical addresses (tried in order) and checksum.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    /// Name of the file on disk.
    pub name: &'static str,
    /// Addresses to try, in order.
    pub urls: Vec<String>,
    /// Lower-case hex SHA-256 of the complete file.
    pub sha256: &'static str,
    /// The most bytes the complete file has (its published size where known): a server that
    /// sends more is cut off there and what it sent is removed.
    pub max_bytes: u64,
}

/// Progress of a download, reported to the caller's observer.
#[derive(Debug, Clone)]
pub enum DownloadEvent {
    /// A transfer started (`resumed_from` bytes were already on disk).
    Started {
        /// File name.
        name: String,
        /// Total size if the server said.
        total: Option<u64>,
        /// Bytes kept from an earlier, interrupted attempt.
        resumed_from: u64,
    },
    /// Bytes received so far (including resumed bytes).
    Progress {
        /// Bytes on disk.
        done: u64,
    },
    /// The file was already present and verified.
    AlreadyPresent {
        /// File name.
        name: String,
    },
    /// Verified and moved into place.
    Finished {
        /// Final path.
        path: PathBuf,
    },
}

/// SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().expect("destination has a file name").to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Downloads `url` to `dest`, resuming `dest.part` if present, and verifies `sha256`.
///
/// A present `dest` with the right checksum is kept as is. On a checksum mismatch the partial
/// file is deleted and an error names the expected and actual digests. A server that announces
/// or sends more than `max_bytes` in all is cut off, and the partial file deleted: a stream
/// without end never fills the disk.
pub fn fetch_file(
    url: &str,
    dest: &Path,
    sha256: &str,
    max_bytes: u64,
    observer: &mut dyn FnMut(DownloadEvent),
) -> Result<()> {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if dest.is_file() && sha256_file(dest)? == sha256 {
        observer(DownloadEvent::AlreadyPresent { name });
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let part = part_path(dest);
    let mut have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let download_err = |reason: String| Error::Download { url: url.to_string(), reason };
    let mut request = ureq::get(url).timeout(std::time::Duration::from_secs(60));
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        // 416: the part file already holds the whole file (or more); verify it from scratch.
        Err(ureq::Error::Status(416, _)) if have > 0 => {
            return finish(url, &part, dest, sha256, observer);
        }
        Err(ureq::Error::Status(code, _)) => return Err(download_err(format!("server answered HTTP {code}"))),
        Err(e) => return Err(download_err(e.to_string())),
    };
    let append = response.status() == 206 && have > 0;
    if !append {
        have = 0;
    }
    let length: Option<u64> = response.header("Content-Length").and_then(|v| v.parse().ok());
    let too_big = |total: u64| {
        let _ = std::fs::remove_file(&part);
        download_err(format!(
            "the server sends {total} bytes or more, but the file has at most {max_bytes}; stopped, partial file removed"
        ))
    };
    if let Some(total) = length.map(|l| l.saturating_add(have)).filter(|&t| t > max_bytes) {
        return Err(too_big(total));
    }
    observer(DownloadEvent::Started { name, total: length.map(|l| l + have), resumed_from: have });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&part)
        .map_err(|e| Error::io(&part, e))?;
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| {
            download_err(format!("connection lost after {} bytes ({e}); run again to resume", have + received))
        })?;
        if n == 0 {
            break;
        }
        if have + received + n as u64 > max_bytes {
            drop(file);
            return Err(too_big(have + received + n as u64));
        }
        file.write_all(&buf[..n]).map_err(|e| Error::io(&part, e))?;
        received += n as u64;
        observer(DownloadEvent::Progress { done: have + received });
    }
    file.sync_all().map_err(|e| Error::io(&part, e))?;
    drop(file);
    if let Some(len) = length {
        if received < len {
            return Err(download_err(format!(
                "connection closed after {} of {} bytes; run again to resume",
                have + received,
                have + len
            )));
        }
    }
    finish(url, &part, dest, sha256, observer)
}

fn finish(url: &str, part: &Path, dest: &Path, sha256: &str, observer: &mut dyn FnMut(DownloadEvent)) -> Result<()> {
    let got = sha256_file(part)?;
    if got != sha256 {
        let _ = std::fs::remove_file(part);
        return Err(Error::Download {
            url: url.to_string(),
            reason: format!("SHA-256 mismatch: expected {sha256}, got {got} (partial file deleted)"),
        });
    }
    std::fs::rename(part, dest).map_err(|e| Error::io(dest, e))?;
    observer(DownloadEvent::Finished { path: dest.to_path_buf() });
    Ok(())
}

/// Fetches `file` into `dir`, trying each of its addresses until one succeeds.
pub fn fetch_remote(file: &RemoteFile, dir: &Path, observer: &mut dyn FnMut(DownloadEvent)) -> Result<PathBuf> {
    let dest = dir.join(file.name);
    let mut last = None;
    for url in &file.urls {
        match fetch_file(url, &dest, file.sha256, file.max_bytes, observer) {
            Ok(()) => return Ok(dest),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Config(format!("no address known for {}", file.name))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A tiny HTTP/1.1 server on 127.0.0.1 serving `body` at any path, honouring
    /// `Range: bytes=N-`; it serves at most `max_requests` requests and then stops. When
    /// `cut_first` is set, the first response stops after half the body (a dropped connection).
    fn serve(body: Vec<u8>, max_requests: usize, cut_first: bool, status: u16) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/file.bin", listener.local_addr().unwrap());
        let ranged = Arc::new(AtomicUsize::new(0));
        let ranged2 = ranged.clone();
        std::thread::spawn(move || {
            for (i, stream) in listener.incoming().take(max_requests).enumerate() {
                let mut stream = stream.unwrap();
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut start = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        start = v.trim().trim_end_matches('-').parse().unwrap();
                        ranged2.fetch_add(1, Ordering::SeqCst);
                    }
                }
                if status != 200 {
                    let _ = write!(stream, "HTTP/1.1 {status} Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    continue;
                }
                let rest = &body[start..];
                let head = if start > 0 {
                    format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        rest.len()
                    )
                } else {
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", rest.len())
                };
                stream.write_all(head.as_bytes()).unwrap();
                let n = if cut_first && i == 0 { rest.len() / 2 } else { rest.len() };
                let _ = stream.write_all(&rest[..n]);
            }
        });
        (url, ranged)
    }

    /// A bound far above the test bodies.
    const LIMIT: u64 = 1 << 30;

    #[test]
    fn a_server_sending_more_than_the_file_is_cut_off_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.bin");
        // Announced too big: refused before any byte is written.
        let (url, _) = serve(body(), 1, false, 200);
        let err = fetch_file(&url, &dest, &digest(&body()), 1000, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("at most 1000") && err.contains("127.0.0.1"), "{err}");
        assert!(!dest.exists() && !part_path(&dest).exists());
        // Streamed without end and without a length: cut off at the bound.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/f.bin", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                line.clear();
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let chunk = [7u8; 4096];
            while stream.write_all(&chunk).is_ok() {}
        });
        let err = fetch_file(&url, &dest, &digest(&body()), 100_000, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("at most 100000") && err.contains("partial file removed"), "{err}");
        assert!(!dest.exists() && !part_path(&dest).exists());
    }

    fn digest(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn body() -> Vec<u8> {
        (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn downloads_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (url, _) = serve(body(), 1, false, 200);
        let dest = dir.path().join("f.bin");
        let mut events = Vec::new();
        fetch_file(&url, &dest, &digest(&body()), LIMIT, &mut |e| events.push(e)).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), body());
        assert!(!part_path(&dest).exists());
        assert!(matches!(events.last(), Some(DownloadEvent::Finished { .. })));
        // Present and verified: no request needed (the server would refuse a second one).
        fetch_file(&url, &dest, &digest(&body()), LIMIT, &mut |_| {}).unwrap();
    }

    #[test]
    fn resumes_after_a_dropped_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (url, ranged) = serve(body(), 2, true, 200);
        let dest = dir.path().join("f.bin");
        let err = fetch_file(&url, &dest, &digest(&body()), LIMIT, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("resume"), "{err}");
        assert!(!dest.exists(), "a partial file must never carry the final name");
        let partial = std::fs::metadata(part_path(&dest)).unwrap().len();
        assert!(partial > 0 && partial < body().len() as u64);
        fetch_file(&url, &dest, &digest(&body()), LIMIT, &mut |_| {}).unwrap();
        assert_eq!(ranged.load(Ordering::SeqCst), 1, "the second request must be a range request");
        assert_eq!(std::fs::read(&dest).unwrap(), body());
    }

    #[test]
    fn checksum_mismatch_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (url, _) = serve(body(), 1, false, 200);
        let dest = dir.path().join("f.bin");
        let wrong = "0".repeat(64);
        let err = fetch_file(&url, &dest, &wrong, LIMIT, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("SHA-256 mismatch") && err.contains(&wrong), "{err}");
        assert!(!dest.exists() && !part_path(&dest).exists());
    }

    #[test]
    fn http_errors_and_mirrors() {
        let dir = tempfile::tempdir().unwrap();
        let (bad, _) = serve(Vec::new(), 1, false, 404);
        let (good, _) = serve(body(), 1, false, 200);
        let dest = dir.path().join("f.bin");
        let err = fetch_file(&bad, &dest, &digest(&body()), LIMIT, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("HTTP 404") && err.contains("127.0.0.1"), "{err}");
        let (bad, _) = serve(Vec::new(), 1, false, 404);
        let file = RemoteFile {
            name: "g.bin",
            urls: vec![bad, good],
            sha256: Box::leak(digest(&body()).into_boxed_str()),
            max_bytes: LIMIT,
        };
        let path = fetch_remote(&file, dir.path(), &mut |_| {}).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), body());
    }
}

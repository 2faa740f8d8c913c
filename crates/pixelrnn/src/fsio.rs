//! Files, written and read under one policy (a leaf: it imports nothing of this crate but the
//! error type, so that `data`, `run`, `checkpoint` and the codec all use it without importing
//! each other).
//!
//! Writing ([`write_atomic`]):
//! - a target that exists must be a regular file: a device node, a FIFO, a socket, a folder or a
//!   symbolic link is refused with [`Error::Output`], never renamed over (as root, renaming
//!   over `/dev/null` would turn the device into a regular file);
//! - the bytes go to a temporary file beside the target, created exclusively (`O_EXCL`: a
//!   symbolic link planted at its name is not followed), synced, then renamed into place, so
//!   a crash or a full disk leaves the previous file or the new one, never a torn one.
//!
//! What a command must not overwrite (its own inputs, a run directory's files) is checked by
//! [`refuse_overwriting`] before any work.
//!
//! Reading ([`read_file`]): only regular files (not `/dev/zero`, a pipe or a folder) of at most
//! [`MAX_FILE_BYTES`], so that a wrong path or a corrupt size ends in an error naming the file
//! instead of exhausting memory.

use std::path::Path;

use crate::error::{Error, Result};

/// The most bytes a file read whole may hold (8 GiB, far above the largest file this tool
/// reads).
pub const MAX_FILE_BYTES: u64 = 8 << 30;

/// What kind of thing is at `path`, in words, when it is not a regular file (`None` for a
/// regular file or nothing at all). Symbolic links are not followed.
pub fn not_a_regular_file(path: &Path) -> Option<&'static str> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_char_device() || kind.is_block_device() {
            return Some("it is a device");
        }
        if kind.is_fifo() {
            return Some("it is a FIFO (named pipe)");
        }
        if kind.is_socket() {
            return Some("it is a socket");
        }
    }
    Some(if kind.is_dir() {
        "it is a folder"
    } else if kind.is_symlink() {
        "it is a symbolic link"
    } else {
        "it is not a regular file"
    })
}

/// Checks that `path` may be written by [`write_atomic`]: nothing is there, or a regular file.
pub fn check_output(path: &Path) -> Result<()> {
    match not_a_regular_file(path) {
        None => Ok(()),
        Some(what) => Err(Error::Output {
            path: path.to_path_buf(),
            reason: format!("{what}; only a regular file or a new name can be an output"),
        }),
    }
}

/// Whether `a` and `b` are the same file on disk (same device and inode; through links).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
    }
}

/// Refuses `output` when it is one of `inputs` (each named by what it is, e.g. "the run's
/// checkpoint"): a command never writes onto what it reads. Also applies [`check_output`].
pub fn refuse_overwriting(output: &Path, inputs: &[(&Path, &str)]) -> Result<()> {
    check_output(output)?;
    for (input, what) in inputs {
        if same_file(output, input) {
            return Err(Error::Output {
                path: output.to_path_buf(),
                reason: format!("it is {what} ({}), which this command reads", input.display()),
            });
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically under the policy above.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    check_output(path)?;
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Some(name) = path.file_name() else {
        return Err(Error::Output { path: path.to_path_buf(), reason: "it names no file".into() });
    };
    let tmp = path.with_file_name(format!(".{}.{}.{n}.tmp", name.to_string_lossy(), std::process::id()));
    write_through(path, &tmp, bytes)
}

/// [`write_atomic`] through the temporary file `tmp`, created exclusively: an existing file or
/// a symbolic link at the temporary name is an error, not something to write through.
fn write_through(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<()> {
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(tmp);
    if let Err(e) = &file {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            // Not ours: left as it is.
            return Err(Error::io(tmp, std::io::Error::new(e.kind(), "the temporary name is taken")));
        }
    }
    write_via(path, tmp, bytes, file)
}

/// Writes `bytes` into `file` (opened at `tmp`), syncs it and renames `tmp` to `path`; on any
/// failure `tmp` is removed and `path` is left as it was.
fn write_via(path: &Path, tmp: &Path, bytes: &[u8], file: std::io::Result<std::fs::File>) -> Result<()> {
    use std::io::Write;
    let result = file.and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(tmp);
        return Err(Error::io(tmp, e));
    }
    // Checked again just before the rename: something may have appeared at the target.
    if let Err(e) = check_output(path) {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    std::fs::rename(tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        Error::io(path, e)
    })
}

/// `path`'s size after checking that it is a regular file within [`MAX_FILE_BYTES`].
pub fn checked_len(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::dataset(path, "not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Error::dataset(path, format!("{} bytes, more than the limit of {MAX_FILE_BYTES}", meta.len())));
    }
    Ok(meta.len())
}

/// The bytes of a regular file within [`MAX_FILE_BYTES`].
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    checked_len(path)?;
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_regular_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[cfg(unix)]
    #[test]
    fn devices_fifos_folders_and_links_are_refused_and_left_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let target = dir.path().join("target.txt");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let cases =
            [(Path::new("/dev/null"), "device"), (&fifo, "FIFO"), (&folder, "folder"), (&link, "symbolic link")];
        for (path, what) in cases {
            let err = write_atomic(path, b"x").unwrap_err().to_string();
            assert!(err.contains("refusing to write") && err.contains(what), "{}: {err}", path.display());
        }
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::symlink_metadata("/dev/null").unwrap().file_type().is_char_device());
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_the_temporary_name_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("out");
        let tmp = dir.path().join(".out.planted.tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let err = write_through(&path, &tmp, b"x").unwrap_err().to_string();
        assert!(err.contains(".out.planted.tmp") && err.contains("taken"), "{err}");
        assert!(std::fs::symlink_metadata(&tmp).unwrap().file_type().is_symlink(), "the planted link is left alone");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!path.exists());
    }

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("checkpoint-best.bin");
        std::fs::write(&input, b"weights").unwrap();
        let via = dir.path().join(".").join("checkpoint-best.bin");
        let err = refuse_overwriting(&via, &[(&input, "the run's checkpoint")]).unwrap_err().to_string();
        assert!(err.contains("the run's checkpoint"), "{err}");
        refuse_overwriting(&dir.path().join("new.prnn"), &[(&input, "the run's checkpoint")]).unwrap();
        assert_eq!(std::fs::read(&input).unwrap(), b"weights");
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint-last.bin");
        write_atomic(&path, b"good").unwrap();
        let tmp = dir.path().join(".checkpoint-last.bin.tmp");
        // Disk full: the file written is /dev/full, where every write fails with ENOSPC.
        if Path::new("/dev/full").exists() {
            let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
            let err = write_via(&path, &tmp, b"new", full).unwrap_err().to_string();
            assert!(err.contains(".checkpoint-last.bin.tmp") && err.to_lowercase().contains("space"), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), b"good");
        } else {
            eprintln!("skipped the disk-full case: /dev/full not present");
        }
        // Unwritable: the temporary name is taken by a folder.
        std::fs::create_dir(&tmp).unwrap();
        assert!(write_through(&path, &tmp, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"good");
        assert!(tmp.is_dir(), "what held the temporary name is not removed");
        // Unique temporary names: writers do not share one, and none is left behind.
        write_atomic(&path, b"newer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"newer");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".checkpoint-last.bin.") && n != ".checkpoint-last.bin.tmp")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

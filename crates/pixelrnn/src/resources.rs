//! Memory checked before it is asked for: a model or a batch too large for the machine ends in
//! an error saying how much it needs and how much there is, not in an allocation abort.

use crate::error::{Error, Result};

/// The memory the system can give this process now (Linux: `MemAvailable` of /proc/meminfo);
/// `None` where that is unknown (then nothing is refused).
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses `what` when it needs more than `available` bytes.
pub fn check_fits(what: &str, needed: u64, available: Option<u64>) -> Result<()> {
    match available {
        Some(free) if needed > free => Err(Error::Config(format!(
            "{what} needs about {:.1} GiB of memory, more than the {:.1} GiB available: use a smaller batch, width or depth",
            needed as f64 / (1u64 << 30) as f64,
            free as f64 / (1u64 << 30) as f64
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_much_is_refused_with_both_sizes() {
        check_fits("x", 10, Some(20)).unwrap();
        check_fits("x", 10, None).unwrap();
        let err = check_fits("training this model", 3 << 30, Some(1 << 30)).unwrap_err().to_string();
        assert!(err.contains("needs about 3.0 GiB") && err.contains("1.0 GiB available"), "{err}");
        assert!(available_memory().is_none_or(|m| m > 0));
    }
}

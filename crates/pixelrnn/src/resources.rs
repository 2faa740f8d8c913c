//! Memory checked before it is asked for: a model or a batch too large for the machine ends in
//! an error saying how much it needs and how much there is, not in an allocation abort.

use crate::error::{Error, Result};

/// The memory the system can give this process now (Linux: `MemAvailable` of /proc/meminfo);
/// `None` where that is unknown (then nothing is refused).
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| mem_available(&text));
    let cgroup = cgroup_room(
        std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().as_deref(),
        std::fs::read_to_string("/sys/fs/cgroup/memory.current").ok().as_deref(),
    );
    let address_space = address_space_room(
        std::fs::read_to_string("/proc/self/limits").ok().as_deref(),
        std::fs::read_to_string("/proc/self/status").ok().as_deref(),
    );
    [meminfo, cgroup, address_space].into_iter().flatten().min()
}

/// What the process's address-space limit (`ulimit -v`, RLIMIT_AS) still allows: the soft
/// limit of `/proc/self/limits` less the `VmSize` of `/proc/self/status`; `None` when unlimited.
fn address_space_room(limits: Option<&str>, status: Option<&str>) -> Option<u64> {
    let line = limits?.lines().find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line.trim_start_matches("Max address space").split_whitespace().next()?.parse().ok()?;
    let used_kib: u64 = status
        .and_then(|s| s.lines().find(|l| l.starts_with("VmSize:")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(soft.saturating_sub(used_kib.saturating_mul(1024)))
}

/// `MemAvailable` of `/proc/meminfo`'s text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// What the process's cgroup (v2) still allows: `memory.max - memory.current`; `None` without
/// a limit ("max") or a cgroup.
fn cgroup_room(max: Option<&str>, current: Option<&str>) -> Option<u64> {
    let max: u64 = max?.trim().parse().ok()?;
    let current: u64 = current.and_then(|c| c.trim().parse().ok()).unwrap_or(0);
    Some(max.saturating_sub(current))
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

    #[test]
    fn the_cgroup_and_address_space_limits_count_as_well_as_mem_available() {
        assert_eq!(mem_available("MemTotal: 100 kB\nMemAvailable:   2048 kB\n"), Some(2 << 20));
        assert_eq!(cgroup_room(Some("1073741824\n"), Some("73741824\n")), Some(1_000_000_000));
        assert_eq!(cgroup_room(Some("max\n"), Some("5\n")), None);
        assert_eq!(cgroup_room(None, None), None);
        assert_eq!(cgroup_room(Some("10"), Some("20")), Some(0));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max address space         8589934592           unlimited            bytes\n";
        let status = "Name:\tpixelrnn\nVmSize:\t    1048576 kB\n";
        assert_eq!(address_space_room(Some(limits), Some(status)), Some(8_589_934_592 - (1 << 30)));
        let unlimited = "Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(address_space_room(Some(unlimited), Some(status)), None);
        assert_eq!(address_space_room(None, None), None);
    }
}

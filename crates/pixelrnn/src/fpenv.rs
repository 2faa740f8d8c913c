//! The CPU's floating-point environment: subnormal floats flushed to zero on the CPU backend's
//! threads for training, kept for the codec ([`KeepSubnormals`]). A module of its own (with the
//! kernels, the only one allowed `unsafe`: the control registers are set by `asm`/intrinsics).
//!
//! Training on the CPU slowed down as the models learned (the Table 5 PixelCNN went from 45 to
//! 6 images/s over 700 steps, while a fresh model of the same size still trained at 32 images/s
//! beside it), and with flush-to-zero on, the same resumed model trained at 26 images/s:
//! values below f32's smallest normal (1.18e-38), which x86 cores handle in slow microcode,
//! appear more often as the model learns. With the cores' flush-to-zero (results) and
//! denormals-are-zero (inputs) modes on, such values are 0.
//!
//! Deviation: PyTorch keeps subnormals by default (`torch.set_flush_denormal(False)`); this
//! changes results only where a value is below 1.18e-38, and it is the same on every run.

/// Set (to anything but `0`) to keep subnormals as PyTorch does: for A/B measurements
/// (`scripts/trained-speed.sh`) and bit-level comparisons with the twin.
pub const KEEP_ENV: &str = "PIXELRNN_KEEP_SUBNORMALS";

/// Turns flush-to-zero on for the calling thread and every thread of rayon's global pool
/// (where the flex backend, gemm and the kernels of this module run), unless [`KEEP_ENV`] is
/// set. Threads started later inherit the mode of the thread that starts them (POSIX); calling
/// it again is harmless.
pub fn flush_to_zero() {
    if keep_requested(std::env::var(KEEP_ENV).ok().as_deref()) {
        return;
    }
    set_this_thread(true);
    rayon::broadcast(|_| set_this_thread(true));
}

/// IEEE-754 default arithmetic (subnormals kept) on the calling thread and every thread of the
/// current rayon pool while it lives, then the mode they had: for computations whose bits must
/// not depend on how the process was set up (the codec: a file coded here decodes on any
/// machine).
#[derive(Debug)]
#[must_use = "the default arithmetic lasts while the guard lives"]
pub struct KeepSubnormals {
    thread_flushed: bool,
    pool_flushed: bool,
}

impl KeepSubnormals {
    /// Keeps subnormals until dropped.
    pub fn new() -> KeepSubnormals {
        let thread_flushed = flushing();
        let pool_flushed = rayon::broadcast(|_| flushing()).into_iter().any(|f| f);
        set_this_thread(false);
        rayon::broadcast(|_| set_this_thread(false));
        KeepSubnormals { thread_flushed, pool_flushed }
    }
}

impl Default for KeepSubnormals {
    fn default() -> Self {
        KeepSubnormals::new()
    }
}

impl Drop for KeepSubnormals {
    fn drop(&mut self) {
        if self.thread_flushed {
            set_this_thread(true);
        }
        if self.pool_flushed {
            rayon::broadcast(|_| set_this_thread(true));
        }
    }
}

/// Whether [`KEEP_ENV`]'s value asks to keep subnormals.
fn keep_requested(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether the calling thread flushes subnormal results to zero (on cores where this module
/// can set it: x86-64 and 64-bit ARM; elsewhere always false).
pub fn flushing() -> bool {
    let tiny = std::hint::black_box(1.0e-30f32) * std::hint::black_box(1.0e-10f32);
    tiny == 0.0
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn set_this_thread(flush: bool) {
    // MXCSR bit 15: flush-to-zero; bit 6: denormals-are-zero.
    const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);
    let mut csr: u32 = 0;
    // SAFETY: stmxcsr / ldmxcsr read and write this thread's SSE control register only; the
    // value written is the one read with the two mode bits set or cleared (no exception is
    // unmasked, the rounding mode is unchanged). Rust documents changing MXCSR as outside what
    // the compiler promises to respect: it may fold float constants at compile time in the
    // default mode, so a folded result can keep a subnormal the running code would flush. That
    // changes which tiny values become zero, the same way on every run of a binary; the codec,
    // which needs the same bits everywhere, runs with the default mode ([`KeepSubnormals`]).
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
        csr = if flush { csr | FTZ_DAZ } else { csr & !FTZ_DAZ };
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags, readonly));
    }
}

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
fn set_this_thread(flush: bool) {
    // FPCR bit 24: flush-to-zero.
    const FZ: u64 = 1 << 24;
    // SAFETY: reads and writes this thread's floating-point control register only, setting or
    // clearing one mode bit (see the x86-64 version on compile-time folding).
    unsafe {
        let mut fpcr: u64;
        std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags));
        fpcr = if flush { fpcr | FZ } else { fpcr & !FZ };
        std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack, preserves_flags));
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn set_this_thread(_flush: bool) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_can_keep_subnormals() {
        assert!(!keep_requested(None));
        assert!(!keep_requested(Some("")));
        assert!(!keep_requested(Some("0")));
        assert!(keep_requested(Some("1")));
    }

    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn subnormal_results_become_zero_on_this_thread_and_the_pool_and_the_guard_restores_them() {
        // A private pool and thread, so that the other tests' global pool keeps its mode.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        std::thread::spawn(move || {
            assert!(!flushing(), "a new thread of an unflushed thread keeps subnormals");
            pool.install(|| {
                flush_to_zero();
                assert!(flushing());
                assert!(rayon::broadcast(|_| flushing()).into_iter().all(|f| f), "every pool thread flushes");
                // Normal numbers are untouched.
                let small = std::hint::black_box(1.0e-20f32) * std::hint::black_box(1.0e-10f32);
                assert_eq!(small, 1.0e-30f32);
                {
                    let _keep = KeepSubnormals::new();
                    assert!(!flushing());
                    assert!(rayon::broadcast(|_| !flushing()).into_iter().all(|k| k), "the pool keeps them");
                    let tiny = std::hint::black_box(1.0e-30f32) * std::hint::black_box(1.0e-10f32);
                    assert!(tiny > 0.0 && tiny < f32::MIN_POSITIVE);
                }
                assert!(flushing(), "restored after the guard");
                assert!(rayon::broadcast(|_| flushing()).into_iter().all(|f| f));
            });
        })
        .join()
        .unwrap();
    }
}

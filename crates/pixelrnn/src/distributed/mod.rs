//! Data-parallel training: the few collective operations the training loop needs, behind one
//! small trait, so that the loop (in [`crate::train`]) stays ours whatever carries the bytes.
//!
//! Implementations:
//! - [`Single`]: one process, one device; every operation is the identity;
//! - [`InProcess`]: N ranks as threads of one process (the GPUs of one machine, and the tests);
//! - `Mpi` (cargo feature `mpi`): N processes launched by `mpirun` / `srun`, on one machine or
//!   many, through the MPI library (rsmpi).
//!
//! What a step does with them (see [`crate::train`]): every rank draws the same global batch
//! and takes its slice ([`slice_of`]); its loss is the sum of its images' NLLs divided by the
//! global batch size, so the summed gradient is the full-batch mean gradient; the gradients are
//! flattened in the module's visiting order ([`flat`]) and summed with [`Collective::sum_f32`];
//! every rank then takes the same optimizer step. Sums are required to be bitwise the same on
//! every rank, so the replicas stay identical; [`flat::parameter_digest`] checks that they do.

mod failing;
pub mod flat;
mod in_process;
#[cfg(feature = "mpi")]
mod mpi;

pub use failing::FailingAt;
pub use in_process::InProcess;
#[cfg(feature = "mpi")]
pub use mpi::Mpi;

use crate::error::{Error, Result};

/// The collective operations of data-parallel training. Every rank calls the same operations
/// in the same order; each call returns once every rank has made it.
pub trait Collective {
    /// This rank, `0..size()`. Rank 0 validates, checkpoints and logs.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Element-wise sum over the ranks, in place. The result is bitwise the same on every rank.
    fn sum_f32(&mut self, values: &mut [f32]) -> Result<()>;
    /// [`Collective::sum_f32`] in double precision (losses, flags).
    fn sum_f64(&mut self, values: &mut [f64]) -> Result<()>;
    /// Replaces `bytes` on every rank by rank 0's.
    fn broadcast(&mut self, bytes: &mut Vec<u8>) -> Result<()>;
    /// Ends the whole job with `code`: how a failing rank keeps the others from waiting in a
    /// collective forever. Returns (for implementations that cannot end other ranks' threads,
    /// which then see an error from their next operation).
    fn abort(&mut self, code: i32);
    /// One line for logs, e.g. `mpi: rank 0 of 2 (local rank 0)`.
    fn describe(&self) -> String;
    /// The rank among the ranks of this machine (which GPU a rank takes).
    fn local_rank(&self) -> usize {
        self.rank()
    }
}

/// One process, one device: nothing to communicate.
#[derive(Debug, Default, Clone, Copy)]
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f32(&mut self, _: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn sum_f64(&mut self, _: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn broadcast(&mut self, _: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
    fn abort(&mut self, _: i32) {}
    fn describe(&self) -> String {
        "single process".into()
    }
}

/// Rank `rank`'s share of a global batch split over `size` ranks: a contiguous slice, the same
/// size on every rank. A batch the ranks cannot split evenly is an error (checked before the
/// first step by [`check_split`]).
pub fn slice_of(global: &[usize], rank: usize, size: usize) -> &[usize] {
    let per = global.len() / size;
    &global[rank * per..(rank + 1) * per]
}

/// Whether `size` ranks can share a global batch of `batch_size` images.
pub fn check_split(batch_size: usize, size: usize) -> Result<()> {
    if size == 0 || !batch_size.is_multiple_of(size) {
        return Err(Error::Config(format!(
            "a global batch of {batch_size} images cannot be split evenly over {size} ranks; choose a --batch-size that is a multiple of {size}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_batch_in_rank_order() {
        let global: Vec<usize> = (10..22).collect();
        let joined: Vec<usize> = (0..3).flat_map(|r| slice_of(&global, r, 3).to_vec()).collect();
        assert_eq!(joined, global);
        assert_eq!(slice_of(&global, 1, 3), &[14, 15, 16, 17]);
    }

    #[test]
    fn an_uneven_split_is_refused_with_the_numbers() {
        check_split(32, 4).unwrap();
        let e = check_split(30, 4).unwrap_err().to_string();
        assert!(e.contains("30") && e.contains("4 ranks"), "{e}");
        assert!(check_split(8, 0).is_err());
    }
}

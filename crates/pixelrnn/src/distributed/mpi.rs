//! N processes through MPI (rsmpi): `mpirun -np N [--hostfile H] pixelrnn train ... --distributed
//! mpi`, or Slurm's `srun --mpi=pmix`. Only the calling thread talks to MPI.
//!
//! Sums are a reduce to rank 0 followed by a broadcast of the result, not `MPI_Allreduce`:
//! an all-reduce may add in a different order on different ranks (recursive doubling over more
//! than two ranks), and the replicas must stay bitwise identical. The gradients of these models
//! are a few MB a step, so the second message costs little.

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::Collective;
use crate::error::{Error, Result};

/// What a launcher (Open MPI's mpirun, MPICH's Hydra, a PMI / PMIx server such as Slurm's
/// srun) sets in each process it starts.
const LAUNCHER_VARIABLES: [&str; 4] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"];

/// This process's rank of an MPI job.
pub struct Mpi {
    // `_universe` is declared last, so it is dropped last: it finalizes MPI.
    world: SimpleCommunicator,
    local_rank: usize,
    _universe: Universe,
}

impl Mpi {
    /// Joins the job that launched this process. An error outside a launcher (rather than a
    /// world of one that would train alone while the user thinks it is distributed).
    pub fn init() -> Result<Mpi> {
        if !LAUNCHER_VARIABLES.iter().any(|v| std::env::var_os(v).is_some()) {
            return Err(Error::Distributed(
                "--distributed mpi: this process was not started by an MPI launcher (none of OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMI_RANK, PMIX_RANK is set); run it as `mpirun -np N pixelrnn train ... --distributed mpi` or under `srun --mpi=pmix`".into(),
            ));
        }
        let universe = mpi::initialize().ok_or_else(|| {
            Error::Distributed("--distributed mpi: MPI was already initialised in this process".into())
        })?;
        let world = universe.world();
        let local_rank = world.split_shared(world.rank()).rank() as usize;
        Ok(Mpi { world, local_rank, _universe: universe })
    }

    fn sum<T: Equivalence + Copy + Default>(&self, values: &mut [T]) {
        let root = self.world.process_at_rank(0);
        if self.world.rank() == 0 {
            let mut total = vec![T::default(); values.len()];
            root.reduce_into_root(&values[..], &mut total[..], SystemOperation::sum());
            values.copy_from_slice(&total);
        } else {
            root.reduce_into(&values[..], SystemOperation::sum());
        }
        root.broadcast_into(values);
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    fn size(&self) -> usize {
        self.world.size() as usize
    }
    fn local_rank(&self) -> usize {
        self.local_rank
    }
    fn sum_f32(&mut self, values: &mut [f32]) -> Result<()> {
        self.sum(values);
        Ok(())
    }
    fn sum_f64(&mut self, values: &mut [f64]) -> Result<()> {
        self.sum(values);
        Ok(())
    }
    fn broadcast(&mut self, bytes: &mut Vec<u8>) -> Result<()> {
        let root = self.world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        // In pieces: MPI counts are 32-bit.
        for chunk in bytes.chunks_mut(1 << 30) {
            root.broadcast_into(chunk);
        }
        Ok(())
    }
    fn abort(&mut self, code: i32) {
        self.world.abort(code)
    }
    fn describe(&self) -> String {
        format!("mpi: rank {} of {} (local rank {})", self.rank(), self.size(), self.local_rank)
    }
}

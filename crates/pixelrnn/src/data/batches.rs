//! Seeded shuffled batches. A batch is a list of indices; [`ImageSet::batch`] turns it into a
//! tensor by copying `batch * C * H * W` bytes, far less work than one training step, so
//! batch assembly cannot starve training.
//!
//! [`ImageSet::batch`]: crate::data::ImageSet::batch

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// An endless stream of batches: each epoch is a fresh permutation determined by
/// `(seed, epoch)`, so a run resumed at any step sees the same batches as an uninterrupted one.
#[derive(Debug, Clone)]
pub struct ShuffledBatches {
    len: usize,
    batch_size: usize,
    seed: u64,
    /// The permutation of the epoch last asked for, kept so that a step does not reshuffle.
    current: Option<(u64, Vec<usize>)>,
}

impl ShuffledBatches {
    /// Batches of `batch_size` over `len` items. The last, short batch of an epoch is dropped
    /// when training (so every step has the same size); use [`Self::batches_per_epoch`].
    pub fn new(len: usize, batch_size: usize, seed: u64) -> Self {
        Self { len, batch_size: batch_size.max(1).min(len.max(1)), seed, current: None }
    }

    /// Full batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        (self.len / self.batch_size).max(1)
    }

    /// The permutation of epoch `epoch`.
    pub fn permutation(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        order.shuffle(&mut rng);
        order
    }

    /// The indices of global step `step` (0-based): epoch `step / batches_per_epoch`. The
    /// epoch's permutation is computed once and reused for its steps.
    pub fn batch_at(&mut self, step: u64) -> &[usize] {
        let per = self.batches_per_epoch() as u64;
        let (epoch, within) = (step / per, (step % per) as usize);
        if self.current.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.current = Some((epoch, self.permutation(epoch)));
        }
        let (_, order) = self.current.as_ref().expect("set just above");
        &order[within * self.batch_size..((within + 1) * self.batch_size).min(self.len)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_permutations_and_seeded() {
        let mut b = ShuffledBatches::new(10, 3, 5);
        assert_eq!(b.batches_per_epoch(), 3);
        let mut seen: Vec<usize> = (0..3).flat_map(|s| b.batch_at(s).to_vec()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 9);
        let fresh = ShuffledBatches::new(10, 3, 5).batch_at(4).to_vec();
        assert_eq!(b.batch_at(4), &fresh[..]);
        assert_ne!(b.permutation(0), b.permutation(1));
        assert_ne!(b.permutation(0), ShuffledBatches::new(10, 3, 6).permutation(0));
    }
}

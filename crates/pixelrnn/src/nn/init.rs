//! Host-side, seeded parameter initialisation, so that the same seed gives the same weights
//! on every backend (CPU or GPU).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded random stream for parameter initialisation.
#[derive(Debug, Clone)]
pub struct InitRng(ChaCha8Rng);

impl InitRng {
    /// A stream determined entirely by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// `count` draws from U(-bound, bound).
    pub fn uniform(&mut self, count: usize, bound: f32) -> Vec<f32> {
        (0..count).map(|_| self.0.random_range(-bound..=bound)).collect()
    }
}

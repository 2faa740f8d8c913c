//! Seeded shuffled batches. A batch is a list of indices; [`ImageSet::batch`] turns it into a
//! tensor by copying `batch * C * H * W` bytes, far less work than one training step, so
//! batch assembly cannot starve training.
//!
//! [`ImageSet::batch`]: crate::data::ImageSet::batch

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// Where a training step's batch comes from: the seeded shuffle, or a list given by the user
/// (`train --batch-order FILE`: the parity harness feeds pixelrnn and the PyTorch twin the
/// same batches in the same order).
#[derive(Debug, Clone)]
pub enum BatchOrder {
    /// [`ShuffledBatches`].
    Shuffled(ShuffledBatches),
    /// Step `s` takes line `s` of the file.
    Listed(Vec<Vec<usize>>),
}

impl BatchOrder {
    /// The indices of global step `step` (0-based). A listed order must cover the step: see
    /// [`read_batch_order`], checked against the run's steps before training.
    pub fn batch_at(&mut self, step: u64) -> &[usize] {
        match self {
            BatchOrder::Shuffled(s) => s.batch_at(step),
            BatchOrder::Listed(list) => &list[step as usize],
        }
    }
}

/// Reads a batch-order file: UTF-8 text, one line per training step, each line `batch_size`
/// whitespace-separated indices into the training split (`< len`); blank lines and lines
/// starting with `#` are skipped. At least `steps` lines are required.
pub fn read_batch_order(path: &Path, len: usize, batch_size: usize, steps: u64) -> Result<Vec<Vec<usize>>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    // Each index takes at least two bytes ("0 "): a bound before reading, so that a wrong path
    // (a device, a huge file) cannot exhaust memory.
    let limit = steps.saturating_mul(batch_size as u64).saturating_mul(24).saturating_add(1 << 20);
    if !meta.is_file() || meta.len() > limit {
        return Err(Error::dataset(
            path,
            format!("expected a text file of {steps} lines of {batch_size} indices (at most {limit} bytes)"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut order = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |what: String| Error::dataset(path, format!("line {}: {what}", number + 1));
        let batch = line
            .split_whitespace()
            .map(|token| match token.parse::<usize>() {
                Ok(i) if i < len => Ok(i),
                Ok(i) => Err(at(format!("index {i} is outside the training split of {len} images"))),
                Err(_) => Err(at(format!("'{token}' is not an image index"))),
            })
            .collect::<Result<Vec<usize>>>()?;
        if batch.len() != batch_size {
            return Err(at(format!("{} indices, expected the batch size {batch_size}", batch.len())));
        }
        order.push(batch);
    }
    if (order.len() as u64) < steps {
        return Err(Error::dataset(path, format!("{} batches listed, the run needs {steps}", order.len())));
    }
    Ok(order)
}

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
    fn a_batch_order_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("order.txt");
        std::fs::write(&path, "# step 1, 2\n0 1 2\n\n 4 3 9\n").unwrap();
        let order = read_batch_order(&path, 10, 3, 2).unwrap();
        assert_eq!(order, vec![vec![0, 1, 2], vec![4, 3, 9]]);
        let mut listed = BatchOrder::Listed(order);
        assert_eq!(listed.batch_at(1), &[4, 3, 9]);
        let cases = [
            ("0 1 2\n", 2, "1 batches listed, the run needs 2"),
            ("0 1\n", 1, "line 1: 2 indices, expected the batch size 3"),
            ("0 1 10\n", 1, "line 1: index 10 is outside the training split of 10 images"),
            ("0 1 x\n", 1, "line 1: 'x' is not an image index"),
            ("0 1 -1\n", 1, "'-1' is not an image index"),
        ];
        for (text, steps, expected) in cases {
            std::fs::write(&path, text).unwrap();
            let err = read_batch_order(&path, 10, 3, steps).unwrap_err().to_string();
            assert!(err.contains(expected) && err.contains("order.txt"), "{text:?}: {err}");
        }
        let err = read_batch_order(dir.path(), 10, 3, 1).unwrap_err().to_string();
        assert!(err.contains("expected a text file"), "{err}");
    }

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

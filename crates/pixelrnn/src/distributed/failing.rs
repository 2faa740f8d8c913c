//! A test double for the failure path of data-parallel training: a rank that fails at a given
//! step, as a rank that crashes there would, without the training loop knowing about faults.

use crate::distributed::Collective;
use crate::error::{Error, Result};

/// `inner`, except that the `step`-th training step of this call (1-based) fails: the loss sum
/// every step starts with (the one collective of two values: the loss and the stop flag)
/// returns an error instead of reaching the other ranks, which then see this rank abort.
pub struct FailingAt<'a> {
    inner: &'a mut dyn Collective,
    step: u64,
    loss_sums: u64,
}

impl<'a> FailingAt<'a> {
    /// `inner`, failing at step `step` of the training call it is given to.
    pub fn new(inner: &'a mut dyn Collective, step: u64) -> Self {
        Self { inner, step, loss_sums: 0 }
    }
}

impl Collective for FailingAt<'_> {
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn sum_f32(&mut self, values: &mut [f32]) -> Result<()> {
        self.inner.sum_f32(values)
    }
    fn sum_f64(&mut self, values: &mut [f64]) -> Result<()> {
        if values.len() == 2 {
            self.loss_sums += 1;
            if self.loss_sums == self.step {
                return Err(Error::Distributed(format!(
                    "rank {} failed at step {} (fault injected)",
                    self.inner.rank(),
                    self.step
                )));
            }
        }
        self.inner.sum_f64(values)
    }
    fn broadcast(&mut self, bytes: &mut Vec<u8>) -> Result<()> {
        self.inner.broadcast(bytes)
    }
    fn abort(&mut self, code: i32) {
        self.inner.abort(code)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn local_rank(&self) -> usize {
        self.inner.local_rank()
    }
}

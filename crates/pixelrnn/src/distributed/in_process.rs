//! N ranks as threads of one process: [`InProcess::group`] makes the handles, one per thread.
//! Sums are taken in rank order by every rank from the same inputs, so they are bitwise equal
//! everywhere. A rank that fails calls [`Collective::abort`]; the others then get an error from
//! their next (or current) operation instead of waiting for it forever.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::Collective;
use crate::error::{Error, Result};

#[derive(Default)]
struct State {
    /// Ranks that reached the current barrier.
    arrived: usize,
    /// Barriers passed so far.
    generation: u64,
    /// Set by [`Collective::abort`]: the code.
    aborted: Option<i32>,
    /// Each rank's contribution to the current operation.
    f32s: Vec<Vec<f32>>,
    f64s: Vec<Vec<f64>>,
    bytes: Vec<u8>,
}

struct Shared {
    size: usize,
    state: Mutex<State>,
    turn: Condvar,
}

/// One rank of an in-process group.
pub struct InProcess {
    rank: usize,
    shared: Arc<Shared>,
}

impl InProcess {
    /// `size` handles of one group; give each to its own thread.
    pub fn group(size: usize) -> Vec<InProcess> {
        let state = State { f32s: vec![Vec::new(); size], f64s: vec![Vec::new(); size], ..State::default() };
        let shared = Arc::new(Shared { size, state: Mutex::new(state), turn: Condvar::new() });
        (0..size).map(|rank| InProcess { rank, shared: shared.clone() }).collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until every rank has arrived; an error if any rank aborted.
    fn barrier<'a>(&'a self, mut state: MutexGuard<'a, State>) -> Result<MutexGuard<'a, State>> {
        let aborted = |code: i32| Error::PeerFailed { code };
        if let Some(code) = state.aborted {
            return Err(aborted(code));
        }
        state.arrived += 1;
        if state.arrived == self.shared.size {
            state.arrived = 0;
            state.generation += 1;
            self.shared.turn.notify_all();
        } else {
            let generation = state.generation;
            while state.generation == generation && state.aborted.is_none() {
                state = self.shared.turn.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }
        match state.aborted {
            Some(code) => Err(aborted(code)),
            None => Ok(state),
        }
    }

    /// Puts this rank's values in, waits for all, sums all in rank order, waits again so no
    /// rank overwrites its values before every rank has read them.
    fn sum<T: Copy + std::ops::Add<Output = T>>(
        &self,
        values: &mut [T],
        slots: fn(&mut State) -> &mut Vec<Vec<T>>,
    ) -> Result<()> {
        let mut state = self.lock();
        slots(&mut state)[self.rank] = values.to_vec();
        let mut state = self.barrier(state)?;
        let all = slots(&mut state);
        if let Some(other) = all.iter().find(|v| v.len() != values.len()) {
            return Err(Error::Distributed(format!(
                "ranks disagree on the size of a sum: {} values here, {} on another rank",
                values.len(),
                other.len()
            )));
        }
        for (i, v) in values.iter_mut().enumerate() {
            *v = all[1..].iter().fold(all[0][i], |acc, rank| acc + rank[i]);
        }
        self.barrier(state).map(drop)
    }
}

impl Collective for InProcess {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn sum_f32(&mut self, values: &mut [f32]) -> Result<()> {
        self.sum(values, |s| &mut s.f32s)
    }
    fn sum_f64(&mut self, values: &mut [f64]) -> Result<()> {
        self.sum(values, |s| &mut s.f64s)
    }
    fn broadcast(&mut self, bytes: &mut Vec<u8>) -> Result<()> {
        let mut state = self.lock();
        if self.rank == 0 {
            state.bytes = bytes.clone();
        }
        let state = self.barrier(state)?;
        if self.rank != 0 {
            bytes.clone_from(&state.bytes);
        }
        self.barrier(state).map(drop)
    }
    fn abort(&mut self, code: i32) {
        self.lock().aborted = Some(code);
        self.shared.turn.notify_all();
    }
    fn describe(&self) -> String {
        format!("in-process: rank {} of {}", self.rank, self.shared.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_threads<T: Send + 'static>(size: usize, f: fn(InProcess) -> T) -> Vec<T> {
        let handles: Vec<_> = InProcess::group(size).into_iter().map(|c| std::thread::spawn(move || f(c))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn sums_and_broadcasts_agree_on_every_rank() {
        let out = on_threads(3, |mut c| {
            let r = c.rank() as f32;
            let mut results = Vec::new();
            for round in 0..50 {
                let mut v = vec![r + 0.1, r * round as f32, 1.0];
                c.sum_f32(&mut v).unwrap();
                results.push(v);
            }
            let mut bytes = vec![c.rank() as u8; c.rank() + 1];
            c.broadcast(&mut bytes).unwrap();
            let mut d = [c.rank() as f64 * 0.5];
            c.sum_f64(&mut d).unwrap();
            (results, bytes, d[0])
        });
        for (results, bytes, d) in &out {
            assert_eq!(results, &out[0].0);
            assert_eq!(results[2], vec![0.1 + 1.1 + 2.1, 2.0 * 3.0, 3.0]);
            assert_eq!(bytes, &vec![0u8]);
            assert_eq!(*d, 1.5);
        }
    }

    #[test]
    fn an_aborting_rank_releases_the_others_with_an_error() {
        let out = on_threads(3, |mut c| {
            if c.rank() == 2 {
                c.abort(7);
                return Ok(());
            }
            let mut v = [1.0f32];
            c.sum_f32(&mut v)?;
            c.sum_f32(&mut v)
        });
        assert!(out[2].is_ok());
        for r in &out[..2] {
            let e = r.as_ref().unwrap_err();
            assert!(matches!(e, Error::PeerFailed { code: 7 }), "{e}");
            assert!(e.to_string().contains("another rank"), "{e}");
        }
    }

    #[test]
    fn ranks_disagreeing_on_a_size_get_an_error_not_garbage() {
        let out = on_threads(2, |mut c| {
            let mut v = vec![1.0f32; 2 + c.rank()];
            c.sum_f32(&mut v)
        });
        assert!(out.iter().all(|r| r.as_ref().unwrap_err().to_string().contains("disagree")));
    }
}

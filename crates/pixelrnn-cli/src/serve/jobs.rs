//! The server's jobs (a sampling or scoring request's model work): at most `max` at once, each
//! with a deadline, all stopped when the server stops. A job runs on a blocking thread; it asks
//! [`Ticket::keep_going`] between image rows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bound on concurrent jobs, and the server's stop flag.
#[derive(Clone)]
pub struct Jobs {
    permits: Arc<Semaphore>,
    max: usize,
    timeout: Duration,
    stopping: Arc<AtomicBool>,
    row_delay: Duration,
}

/// A running job's place: held until the job ends.
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
    deadline: Instant,
    timeout: Duration,
    stopping: Arc<AtomicBool>,
    row_delay: Duration,
}

impl Jobs {
    /// At most `max` jobs at once, each at most `timeout`.
    pub fn new(max: usize, timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            timeout,
            stopping: Arc::new(AtomicBool::new(false)),
            row_delay: Duration::ZERO,
        }
    }

    /// Every job waits `delay` at each check (`serve --test-row-delay-ms`, for the tests).
    pub fn with_row_delay(self, delay: Duration) -> Self {
        Self { row_delay: delay, ..self }
    }

    /// A place for one more job, or the "busy" answer when all are taken.
    pub fn start(&self) -> Result<Ticket, String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err("the server is stopping".into());
        }
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            format!("busy: {} job(s) are running, the most this server takes at once; try again shortly", self.max)
        })?;
        Ok(Ticket {
            _permit: permit,
            deadline: Instant::now() + self.timeout,
            timeout: self.timeout,
            stopping: self.stopping.clone(),
            row_delay: self.row_delay,
        })
    }

    /// Stops every running job at its next check, and refuses new ones.
    pub fn stop_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

impl Ticket {
    /// `Ok` while the job may go on; else why it must stop.
    pub fn keep_going(&self) -> Result<(), String> {
        if !self.row_delay.is_zero() {
            std::thread::sleep(self.row_delay);
        }
        if self.stopping.load(Ordering::SeqCst) {
            return Err("the server is stopping".into());
        }
        if Instant::now() > self.deadline {
            return Err(format!("the job took longer than the server's limit of {} s", self.timeout.as_secs()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_beyond_the_bound_are_refused_until_one_ends() {
        let jobs = Jobs::new(2, Duration::from_secs(60));
        let a = jobs.start().unwrap();
        let _b = jobs.start().unwrap();
        assert!(jobs.start().err().unwrap().starts_with("busy: 2 job(s)"));
        drop(a);
        assert!(jobs.start().is_ok());
    }

    #[test]
    fn a_job_stops_at_its_deadline_and_when_the_server_stops() {
        let jobs = Jobs::new(1, Duration::from_millis(0));
        let late = jobs.start().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert!(late.keep_going().unwrap_err().contains("limit of 0 s"));
        drop(late);
        let jobs = Jobs::new(1, Duration::from_secs(60));
        let running = jobs.start().unwrap();
        assert!(running.keep_going().is_ok());
        jobs.stop_all();
        assert_eq!(running.keep_going().unwrap_err(), "the server is stopping");
        drop(running);
        assert_eq!(jobs.start().err().unwrap(), "the server is stopping");
    }
}

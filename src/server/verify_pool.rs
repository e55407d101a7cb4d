//! The bounded pool token verification runs on: signature checks and Datalog take a worker
//! thread of their own, never an async worker, and when every worker is busy a request waits a
//! bounded time and is then turned away. Knows nothing of tokens or HTTP.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Why work was not done.
#[derive(Debug, thiserror::Error)]
pub enum VerifyPoolError {
    #[error(
        "the server is busy verifying tokens ({workers} at once, none free within {} ms): retry shortly",
        waited.as_millis()
    )]
    Busy { workers: usize, waited: Duration },
    #[error("token verification stopped unexpectedly: {0}")]
    Failed(String),
}

/// At most `workers` jobs at once on tokio's blocking threads; a permit is held until the job
/// ends, even when the request that asked for it was dropped, so the bound is on work done.
#[derive(Debug, Clone)]
pub struct VerifyPool {
    permits: Arc<Semaphore>,
    workers: usize,
    queue_wait: Duration,
}

impl VerifyPool {
    /// `workers` is at least one.
    pub fn new(workers: usize, queue_wait: Duration) -> VerifyPool {
        let workers = workers.max(1);
        VerifyPool {
            permits: Arc::new(Semaphore::new(workers)),
            workers,
            queue_wait,
        }
    }

    /// Runs `work` on a worker once one is free within the queue wait.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, VerifyPoolError> {
        let busy = || VerifyPoolError::Busy {
            workers: self.workers,
            waited: self.queue_wait,
        };
        // The semaphore is fair: waiters are served in arrival order, and never closed.
        let permit = tokio::time::timeout(self.queue_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| VerifyPoolError::Failed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_turns_work_away_after_the_queue_wait_and_serves_again_when_free() {
        let pool = VerifyPool::new(1, Duration::from_millis(50));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let busy = pool.clone();
        let holder = tokio::spawn(async move { busy.run(move || held.recv().is_ok()).await });
        // Let the holder take the only worker.
        while pool.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let started = Instant::now();
        let refused = pool.run(|| 1).await;
        assert!(
            matches!(refused, Err(VerifyPoolError::Busy { workers: 1, .. })),
            "{refused:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
        release.send(()).unwrap();
        assert!(holder.await.unwrap().unwrap());
        assert_eq!(pool.run(|| 2).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_gives_its_worker_back() {
        let pool = VerifyPool::new(1, Duration::from_millis(50));
        let failed = pool.run(|| -> u8 { panic!("boom") }).await;
        assert!(
            matches!(failed, Err(VerifyPoolError::Failed(_))),
            "{failed:?}"
        );
        assert_eq!(pool.run(|| 3).await.unwrap(), 3);
    }
}

//! `BoundedTasks`: a set of spawned tasks with a cap on how many run at once and a join
//! point. `spawn` waits for room (backpressure instead of unbounded growth); `drain` waits
//! for every task to finish (shutdown).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct BoundedTasks {
    permits: Arc<Semaphore>,
    max: u32,
}

impl BoundedTasks {
    pub fn new(max: u32) -> Self {
        Self { permits: Arc::new(Semaphore::new(max as usize)), max }
    }

    /// Spawns `task` once fewer than `max` run.
    pub async fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        tokio::spawn(async move {
            task.await;
            drop(permit);
        });
    }

    /// Waits until every spawned task has finished.
    pub async fn drain(&self) {
        if let Ok(all) = self.permits.acquire_many(self.max).await {
            drop(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn drain_waits_for_all_and_concurrency_is_capped() {
        let tasks = BoundedTasks::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let (running, peak, done) = (running.clone(), peak.clone(), done.clone());
            tasks
                .spawn(async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .await;
        }
        tasks.drain().await;
        assert_eq!(done.load(Ordering::SeqCst), 10);
        assert!(peak.load(Ordering::SeqCst) <= 2);
    }
}

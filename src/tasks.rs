//! [`TaskSet`]: the one owner of spawned background tasks. Leaf: imports nothing of ours.
//!
//! Every task the service spawns goes into a named set; the set is joined at shutdown by
//! whoever owns it (in the end `app`, in a fixed order), so no task outlives the service and
//! none is forgotten. Joining awaits the tasks themselves ([`JoinSet::join_next`]): there is
//! no polling. A bounded set caps how many tasks run at once, and [`TaskSet::spawn_when_room`]
//! waits for room instead of growing without bound (backpressure).
//!
//! Finished tasks are reaped on every spawn, so a long-lived set holds only running tasks. A
//! task that panicked is logged with its set's name when it is reaped. Dropping the last handle
//! of a set aborts what still runs in it: the owner decides when its tasks end.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};

/// A named set of spawned tasks with one join point. Cloning gives another handle to the same
/// set.
#[derive(Clone)]
pub struct TaskSet {
    inner: Arc<Inner>,
}

struct Inner {
    name: &'static str,
    /// A `std` mutex: held only to insert, reap or take the set, never across an `.await`.
    set: Mutex<Tasks>,
    /// Room for running tasks in a bounded set.
    room: Option<Arc<Semaphore>>,
}

#[derive(Default)]
struct Tasks {
    running: JoinSet<()>,
    /// Set once [`TaskSet::join`] found nothing left: later spawns are refused.
    closed: bool,
}

/// The set was joined: no task is accepted any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the task set {name} is closed")]
pub struct Closed {
    pub name: &'static str,
}

impl TaskSet {
    /// A set with no cap on how many tasks run at once (each spawner bounds its own work).
    pub fn new(name: &'static str) -> Self {
        Self::with_room(name, None)
    }

    /// A set in which at most `max` tasks run at once.
    pub fn bounded(name: &'static str, max: usize) -> Self {
        Self::with_room(name, Some(Arc::new(Semaphore::new(max))))
    }

    fn with_room(name: &'static str, room: Option<Arc<Semaphore>>) -> Self {
        Self { inner: Arc::new(Inner { name, set: Mutex::new(Tasks::default()), room }) }
    }

    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// Tasks spawned and not yet reaped.
    pub fn len(&self) -> usize {
        self.lock().running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Spawns `task` now. In a bounded set the task first waits for room inside its own
    /// future, so the caller never waits; use [`Self::spawn_when_room`] for backpressure.
    pub fn spawn<F>(&self, task: F) -> Result<(), Closed>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self.inner.room.clone() {
            None => self.insert(task),
            Some(room) => self.insert(async move {
                let Ok(_permit) = room.acquire_owned().await else { return };
                task.await;
            }),
        }
    }

    /// Waits until fewer than the cap run (at once in an unbounded set), then spawns `task`.
    pub async fn spawn_when_room<F>(&self, task: F) -> Result<(), Closed>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(room) = self.inner.room.clone() else { return self.insert(task) };
        let Ok(permit) = room.acquire_owned().await else { return Err(Closed { name: self.inner.name }) };
        self.insert(async move {
            task.await;
            drop(permit);
        })
    }

    fn insert<F>(&self, task: F) -> Result<(), Closed>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut tasks = self.lock();
        if tasks.closed {
            return Err(Closed { name: self.inner.name });
        }
        while let Some(done) = tasks.running.try_join_next() {
            self.reaped(done);
        }
        tasks.running.spawn(task);
        Ok(())
    }

    /// Waits for every task in the set, including those spawned while it waits, then closes
    /// the set. Call it after the tasks were told to stop (their shutdown signal).
    pub async fn join(&self) {
        loop {
            let mut running = {
                let mut tasks = self.lock();
                if tasks.running.is_empty() {
                    tasks.closed = true;
                    return;
                }
                std::mem::take(&mut tasks.running)
            };
            while let Some(done) = running.join_next().await {
                self.reaped(done);
            }
        }
    }

    /// [`Self::join`], bounded: what still runs `timeout` after the call is aborted (and waited
    /// for), so a task that ignores its stop signal cannot hold shutdown up. Answers whether
    /// every task ended by itself.
    pub async fn join_within(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut running = {
                let mut tasks = self.lock();
                if tasks.running.is_empty() {
                    tasks.closed = true;
                    return true;
                }
                std::mem::take(&mut tasks.running)
            };
            loop {
                match tokio::time::timeout_at(deadline, running.join_next()).await {
                    Ok(Some(done)) => self.reaped(done),
                    Ok(None) => break,
                    Err(_) => {
                        tracing::warn!(
                            tasks = self.inner.name,
                            left = running.len(),
                            "tasks aborted: not ended in {timeout:?}"
                        );
                        running.abort_all();
                        while let Some(done) = running.join_next().await {
                            self.reaped(done);
                        }
                        self.abort().await;
                        return false;
                    }
                }
            }
        }
    }

    /// Stops every task in the set at its next `.await`, waits until they are gone, and
    /// closes the set. For tasks that have nothing to finish (a dead connection's writer).
    pub async fn abort(&self) {
        let mut running = {
            let mut tasks = self.lock();
            tasks.closed = true;
            std::mem::take(&mut tasks.running)
        };
        running.abort_all();
        while let Some(done) = running.join_next().await {
            self.reaped(done);
        }
    }

    fn reaped(&self, done: Result<(), JoinError>) {
        if let Err(err) = done
            && err.is_panic()
        {
            tracing::error!(tasks = self.inner.name, error = %err, "a background task panicked");
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tasks> {
        // A panic while holding the lock leaves the set itself consistent (insert and take
        // are single calls), so a poisoned lock is used as is.
        self.inner.set.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for TaskSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSet").field("name", &self.inner.name).field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn join_waits_for_all_and_concurrency_is_capped() {
        let tasks = TaskSet::bounded("test", 2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let (running, peak, done) = (running.clone(), peak.clone(), done.clone());
            tasks
                .spawn_when_room(async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .await
                .expect("open");
        }
        tasks.join().await;
        assert_eq!(done.load(Ordering::SeqCst), 10);
        assert!(peak.load(Ordering::SeqCst) <= 2);
    }

    #[tokio::test(start_paused = true)]
    async fn join_includes_tasks_spawned_while_joining_then_closes() {
        let tasks = TaskSet::new("test");
        let done = Arc::new(AtomicUsize::new(0));
        let (inner_tasks, inner_done) = (tasks.clone(), done.clone());
        tasks
            .spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let d = inner_done.clone();
                inner_tasks
                    .spawn(async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        d.fetch_add(1, Ordering::SeqCst);
                    })
                    .expect("open while joining");
                inner_done.fetch_add(1, Ordering::SeqCst);
            })
            .expect("open");
        tasks.join().await;
        assert_eq!(done.load(Ordering::SeqCst), 2, "the task spawned during join was joined too");
        assert_eq!(tasks.spawn(async {}), Err(Closed { name: "test" }));
    }

    #[tokio::test]
    async fn finished_tasks_are_reaped_on_spawn_and_a_panic_does_not_stop_the_join() {
        let tasks = TaskSet::new("test");
        tasks.spawn(async { panic!("boom") }).expect("open");
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        tasks.spawn(async {}).expect("open");
        assert!(tasks.len() <= 1, "the panicked task was reaped");
        tasks.join().await;
        assert!(tasks.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn join_within_waits_for_tasks_that_end_and_aborts_one_that_does_not() {
        let tasks = TaskSet::new("test");
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        tasks
            .spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                d.fetch_add(1, Ordering::SeqCst);
            })
            .expect("open");
        assert!(tasks.join_within(Duration::from_secs(1)).await, "the task ended by itself");
        assert_eq!(done.load(Ordering::SeqCst), 1);

        let tasks = TaskSet::new("test");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks
            .spawn(async move {
                let _tx = tx;
                std::future::pending::<()>().await;
            })
            .expect("open");
        let started = tokio::time::Instant::now();
        assert!(!tasks.join_within(Duration::from_secs(1)).await, "the stuck task was aborted");
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert!(rx.await.is_err(), "the aborted task is gone, its sender dropped");
        assert_eq!(tasks.spawn(async {}), Err(Closed { name: "test" }));
    }

    #[tokio::test]
    async fn dropping_the_last_handle_aborts_what_runs() {
        let tasks = TaskSet::new("test");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks
            .spawn(async move {
                let _tx = tx;
                std::future::pending::<()>().await;
            })
            .expect("open");
        drop(tasks);
        assert!(rx.await.is_err(), "the task was aborted, its sender dropped");
    }
}

//! In-process wake-ups: who is waiting for what. The SMS service signals an owner's inbox
//! after an inbound message commits; long-polls waiting on that inbox wake at once instead of
//! polling the database.
//!
//! A signal is a hint ("look at the table"), never the data itself, so a missed or spurious
//! wake-up costs one extra query, never a message. Across nodes the same hint will travel
//! over Postgres LISTEN/NOTIFY.

use crate::ids::SubscriptionId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use tokio::sync::Notify;

/// Above this many entries, dead ones are swept on the next `watch`.
const SWEEP_THRESHOLD: usize = 4096;

/// One owner's wake-up point.
pub struct InboxSignal {
    notify: Notify,
    /// When the newest signalled commit happened, in ns since the hub's epoch (0: never).
    committed_at_ns: AtomicU64,
    epoch: Instant,
}

impl InboxSignal {
    /// A future that completes on the next signal. Call `enable()` on it (pinned) before
    /// checking the table, so a signal between the check and the await is not lost.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// The instant of the newest signalled commit, if any.
    pub fn last_commit(&self) -> Option<Instant> {
        match self.committed_at_ns.load(Ordering::Acquire) {
            0 => None,
            ns => Some(self.epoch + std::time::Duration::from_nanos(ns)),
        }
    }
}

pub struct InboxHub {
    epoch: Instant,
    // std Mutex: held only for a map lookup or insert, never across an await.
    waiters: Mutex<HashMap<SubscriptionId, Weak<InboxSignal>>>,
}

impl Default for InboxHub {
    fn default() -> Self {
        Self { epoch: Instant::now(), waiters: Mutex::new(HashMap::new()) }
    }
}

impl InboxHub {
    /// The signal of `owner`'s inbox; hold the `Arc` while waiting.
    pub fn watch(&self, owner: SubscriptionId) -> Arc<InboxSignal> {
        let mut map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(live) = map.get(&owner).and_then(Weak::upgrade) {
            return live;
        }
        if map.len() >= SWEEP_THRESHOLD {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let signal =
            Arc::new(InboxSignal { notify: Notify::new(), committed_at_ns: AtomicU64::new(0), epoch: self.epoch });
        map.insert(owner, Arc::downgrade(&signal));
        signal
    }

    /// Wakes everyone waiting on `owner`'s inbox; `committed_at` is when the data committed.
    pub fn signal(&self, owner: SubscriptionId, committed_at: Instant) {
        let signal = {
            let map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&owner).and_then(Weak::upgrade)
        };
        if let Some(signal) = signal {
            let ns = u64::try_from(committed_at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
            signal.committed_at_ns.store(ns.max(1), Ordering::Release);
            signal.notify.notify_waiters();
        }
    }

    /// Owners with at least one live waiter (for metrics).
    pub fn watched(&self) -> usize {
        let map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|w| w.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_signal_between_check_and_await_is_not_lost() {
        let hub = InboxHub::default();
        let signal = hub.watch(SubscriptionId::new(7));
        let notified = signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // The "table check" happens here and finds nothing; then a commit is signalled.
        hub.signal(SubscriptionId::new(7), Instant::now());
        tokio::time::timeout(Duration::from_secs(5), notified).await.expect("woken");
        assert!(signal.last_commit().is_some());
    }

    #[tokio::test]
    async fn signals_reach_only_their_owner_and_dead_entries_go() {
        let hub = InboxHub::default();
        let a = hub.watch(SubscriptionId::new(1));
        let b = hub.watch(SubscriptionId::new(2));
        hub.signal(SubscriptionId::new(1), Instant::now());
        assert!(a.last_commit().is_some());
        assert!(b.last_commit().is_none());
        assert_eq!(hub.watched(), 2);
        drop(b);
        assert_eq!(hub.watched(), 1);
        assert!(Arc::ptr_eq(&a, &hub.watch(SubscriptionId::new(1))));
    }
}

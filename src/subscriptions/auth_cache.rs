//! `AuthCache`: resolved bearer tokens, keyed by token hash, trusted for a short time so a
//! busy agent does not cost a database read per request. Bounded; entries expire on age and
//! are dropped for a subscription whenever this process changes it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Caller;
use crate::ids::SubscriptionId;

/// Entries kept at most; the cache is emptied when full (it refills from the database).
const MAX_ENTRIES: usize = 65_536;

pub struct AuthCache {
    ttl: Duration,
    // std Mutex: held for one map operation, never across an await.
    entries: Mutex<HashMap<[u8; 32], (Caller, Instant)>>,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<Caller> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(hash).filter(|(_, at)| at.elapsed() < self.ttl).map(|(c, _)| c.clone())
    }

    pub fn insert(&self, hash: [u8; 32], caller: Caller) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (caller, Instant::now()));
    }

    pub fn forget_subscription(&self, subscription_id: SubscriptionId) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (c, _)| c.subscription_id != subscription_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(id: i64) -> Caller {
        Caller {
            subscription_id: SubscriptionId::new(id),
            wallet: crate::wallet::Address::parse("0x1111111111111111111111111111111111111111").expect("address"),
            number: crate::e164::E164::parse("+12025550100").expect("number"),
            plan: "yearly".to_owned(),
            payer: None,
            created_at_ms: 0,
            expires_at_ms: 1,
        }
    }

    #[test]
    fn entries_expire_and_are_forgotten_per_subscription() {
        let cache = AuthCache::new(Duration::from_secs(60));
        cache.insert([1; 32], caller(1));
        cache.insert([2; 32], caller(2));
        assert_eq!(cache.get(&[1; 32]).map(|c| c.subscription_id), Some(SubscriptionId::new(1)));
        cache.forget_subscription(SubscriptionId::new(1));
        assert!(cache.get(&[1; 32]).is_none());
        assert!(cache.get(&[2; 32]).is_some());

        let expired = AuthCache::new(Duration::ZERO);
        expired.insert([1; 32], caller(1));
        assert!(expired.get(&[1; 32]).is_none());
    }
}

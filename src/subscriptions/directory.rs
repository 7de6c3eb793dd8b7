//! `PoolDirectory`: the set of numbers in our pool, in memory, for the questions asked on
//! every message ("is this destination one of ours?") that should not cost a query. Loaded
//! from the store at start and kept current as numbers are added through this process.

use std::collections::HashSet;
use std::sync::RwLock;

#[derive(Default)]
pub struct PoolDirectory {
    // std RwLock: held for one set lookup or insert, never across an await.
    numbers: RwLock<HashSet<String>>,
}

impl PoolDirectory {
    pub fn contains(&self, e164: &str) -> bool {
        self.numbers.read().unwrap_or_else(|p| p.into_inner()).contains(e164)
    }

    pub fn extend<'a>(&self, numbers: impl IntoIterator<Item = &'a String>) {
        let mut set = self.numbers.write().unwrap_or_else(|p| p.into_inner());
        set.extend(numbers.into_iter().cloned());
    }
}

//! [`TrackerMsg`]: what the dispatcher tells the delivery tracker, and the rules both sides
//! share ([`MAX_ATTEMPTS`]). Kept apart so that `dispatcher` and `delivery` both import it and
//! neither imports the other.

use crate::telco::DeliveryReceipt;

/// Tracker messages queued at most.
pub const TRACKER_QUEUE: usize = 16_384;
/// Submission attempts before a message is `failed` (the dispatcher stops resubmitting; the
/// tracker stops retrying a retryable failure).
pub const MAX_ATTEMPTS: i64 = 3;

#[derive(Debug)]
pub enum TrackerMsg {
    Acked {
        id: i64,
        /// One per receipt to expect; never empty.
        carrier_ids: Vec<String>,
        segments: u32,
        /// This submission's attempt number (1-based).
        attempt: i64,
    },
    /// A receipt whose carrier id matched no row in the table.
    Unmatched(DeliveryReceipt),
}

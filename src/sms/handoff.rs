//! Direct hand-off of an inbound message to a parked `receive` long-poll.
//!
//! A long-poll that found its inbox empty parks here under its number. When a message for that
//! number arrives, the delivery tracker takes the oldest parked slot before storing it and the
//! writer claims the message for that slot's owner inside the very transaction that stores it
//! (`InboundInsert::claim_for`). After the commit the tracker sends the message down the slot:
//! the waiter answers without a claim of its own, which would cost a second commit (and, on
//! SQLite, a second WAL fsync) on the path from the network to the agent.
//!
//! Nothing is lost when the two sides race: a slot the waiter withdrew or dropped fails the
//! send, and the tracker then unclaims the message and signals the inbox, so it is offered
//! again like any other unclaimed message. A failed or refused claim (the number changed hands)
//! drops the sender; the waiter sees the closed slot and looks at the table again.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::oneshot;

use crate::ids::SubscriptionId;
use crate::store::ClaimedMessage;

/// A message claimed for a parked waiter, and when it committed.
#[derive(Debug)]
pub struct Handed {
    pub message: ClaimedMessage,
    pub committed: Instant,
}

/// A taken slot: the owner the message may be claimed for, and where to send it.
pub struct Taken {
    pub owner: SubscriptionId,
    pub tx: oneshot::Sender<Handed>,
}

struct Slot {
    id: u64,
    owner: SubscriptionId,
    tx: oneshot::Sender<Handed>,
}

#[derive(Default)]
pub struct Handoffs {
    next_id: AtomicU64,
    // std Mutex: held for a map operation only, never across an await.
    slots: Mutex<HashMap<String, VecDeque<Slot>>>,
}

impl Handoffs {
    /// Parks a waiter of `owner` on `number`; the slot leaves the registry when the returned
    /// guard is withdrawn or dropped.
    pub fn park(self: &Arc<Self>, number: &str, owner: SubscriptionId) -> Parking {
        let (tx, rx) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(number.to_owned()).or_default().push_back(Slot { id, owner, tx });
        Parking { handoffs: Arc::clone(self), number: number.to_owned(), id, rx: Some(rx) }
    }

    /// Takes the longest-parked live slot on `number`, if any.
    pub fn take(&self, number: &str) -> Option<Taken> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let queue = slots.get_mut(number)?;
        let mut taken = None;
        while let Some(slot) = queue.pop_front() {
            if !slot.tx.is_closed() {
                taken = Some(Taken { owner: slot.owner, tx: slot.tx });
                break;
            }
        }
        if queue.is_empty() {
            slots.remove(number);
        }
        taken
    }

    /// Slots parked across all numbers.
    #[cfg(test)]
    pub fn parked(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.values().map(VecDeque::len).sum()
    }

    /// Removes slot `id` of `number`; `false` when it was already taken.
    fn remove(&self, number: &str, id: u64) -> bool {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let Some(queue) = slots.get_mut(number) else { return false };
        let Some(at) = queue.iter().position(|s| s.id == id) else { return false };
        queue.remove(at);
        if queue.is_empty() {
            slots.remove(number);
        }
        true
    }
}

/// A parked waiter's end of its slot.
pub struct Parking {
    handoffs: Arc<Handoffs>,
    number: String,
    id: u64,
    /// `None` once withdrawn.
    rx: Option<oneshot::Receiver<Handed>>,
}

impl Parking {
    /// Resolves with the handed message, or `None` when the hand-off failed (the sender was
    /// dropped) or the slot was withdrawn. Cancel-safe.
    pub async fn handed(&mut self) -> Option<Handed> {
        match self.rx.as_mut() {
            Some(rx) => rx.await.ok(),
            None => std::future::pending().await,
        }
    }

    /// Leaves the registry. A message already sent down the slot is returned; a hand-off taken
    /// but not yet sent will fail on send, and the tracker offers that message again.
    pub fn withdraw(&mut self) -> Option<Handed> {
        let mut rx = self.rx.take()?;
        if self.handoffs.remove(&self.number, self.id) {
            return None;
        }
        rx.try_recv().ok()
    }
}

impl Drop for Parking {
    fn drop(&mut self) {
        if self.rx.is_some() {
            self.handoffs.remove(&self.number, self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{MessageId, SubscriptionId};

    fn message(id: i64) -> Handed {
        Handed {
            message: ClaimedMessage {
                id,
                message_id: MessageId::from_stored(format!("msg_{id}")),
                number: "+15550001111".into(),
                peer: "+15550002222".into(),
                body: "hi".into(),
                created_at: 1,
                received_at: Some(1),
            },
            committed: Instant::now(),
        }
    }

    #[tokio::test]
    async fn slots_are_taken_oldest_first_and_only_once() {
        let handoffs = Arc::new(Handoffs::default());
        let mut first = handoffs.park("+15550001111", SubscriptionId::new(1));
        let mut second = handoffs.park("+15550001111", SubscriptionId::new(2));
        assert!(handoffs.take("+15550009999").is_none());
        let taken = handoffs.take("+15550001111").expect("first slot");
        assert_eq!(taken.owner, SubscriptionId::new(1));
        taken.tx.send(message(10)).expect("first is listening");
        assert_eq!(first.handed().await.expect("handed").message.id, 10);
        let taken = handoffs.take("+15550001111").expect("second slot");
        assert_eq!(taken.owner, SubscriptionId::new(2));
        assert!(handoffs.take("+15550001111").is_none());
        drop(taken);
        assert!(second.handed().await.is_none(), "a dropped sender ends the wait");
        assert_eq!(handoffs.parked(), 0);
    }

    #[test]
    fn a_withdrawn_or_dropped_slot_is_never_taken_and_a_late_send_fails() {
        let handoffs = Arc::new(Handoffs::default());
        let mut withdrawn = handoffs.park("+15550001111", SubscriptionId::new(1));
        let dropped = handoffs.park("+15550001111", SubscriptionId::new(1));
        assert_eq!(handoffs.parked(), 2);
        assert!(withdrawn.withdraw().is_none());
        drop(dropped);
        assert_eq!(handoffs.parked(), 0);
        assert!(handoffs.take("+15550001111").is_none());

        // Taken, then withdrawn before the send: the send fails, so the tracker unclaims.
        let mut slot = handoffs.park("+15550001111", SubscriptionId::new(1));
        let taken = handoffs.take("+15550001111").expect("slot");
        assert!(slot.withdraw().is_none());
        assert!(taken.tx.send(message(11)).is_err());

        // Taken and sent, then withdrawn (the waiter's deadline fired at the same moment): the
        // message is not lost, withdraw returns it.
        let mut slot = handoffs.park("+15550001111", SubscriptionId::new(1));
        let taken = handoffs.take("+15550001111").expect("slot");
        taken.tx.send(message(12)).expect("listening");
        assert_eq!(slot.withdraw().expect("handed").message.id, 12);
    }
}

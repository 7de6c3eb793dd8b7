//! `PurchaseQueue`: group commit for instant (sandbox) purchases. One task takes whatever
//! purchases are waiting (up to [`MAX_BATCH`]) and records them in one transaction, so many
//! concurrent subscribes share one commit. A batch that fails is retried item by item, so one
//! bad purchase cannot fail its neighbours.
//!
//! The task lives in the subscription service's [`TaskSet`]; [`PurchaseQueue::spawn`]'s `stop`
//! closes the queue (a later `buy` fails with `WriterStopped`), the purchases already queued
//! are still recorded, and then the task ends, so the service can join it at shutdown.

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::{GrantRequest, NewPayment, Purchase, Store, StoreError, SubscriptionSource};
use crate::tasks::{Closed, TaskSet};

/// Purchases waiting at most; callers wait (backpressure) beyond it.
const QUEUE: usize = 4096;
const MAX_BATCH: usize = 128;

/// An instant purchase, owned so it can cross to the writer task.
#[derive(Debug, Clone)]
pub struct PurchaseJob {
    pub x402_version: i64,
    pub network: String,
    pub asset: String,
    pub payer: String,
    pub pay_to: String,
    pub amount: String,
    pub auth_nonce: String,
    pub valid_before_secs: i64,
    pub signature: String,
    pub idempotency_key: Option<String>,
    pub plan: String,
    pub duration_ms: i64,
    pub token_hash: [u8; 32],
    pub now_ms: i64,
}

impl PurchaseJob {
    fn payment(&self) -> NewPayment<'_> {
        NewPayment {
            x402_version: self.x402_version,
            network: &self.network,
            asset: &self.asset,
            payer: &self.payer,
            pay_to: &self.pay_to,
            amount: &self.amount,
            auth_nonce: &self.auth_nonce,
            valid_before_secs: self.valid_before_secs,
            signature: &self.signature,
            idempotency_key: self.idempotency_key.as_deref(),
            now_ms: self.now_ms,
        }
    }

    fn grant(&self) -> GrantRequest<'_> {
        GrantRequest {
            wallet: &self.payer,
            payer: &self.payer,
            plan: &self.plan,
            duration_ms: self.duration_ms,
            source: SubscriptionSource::Payment,
            token_hash: &self.token_hash,
            now_ms: self.now_ms,
        }
    }
}

type Job = (PurchaseJob, oneshot::Sender<Result<Purchase, StoreError>>);

#[derive(Clone)]
pub struct PurchaseQueue {
    tx: mpsc::Sender<Job>,
}

impl PurchaseQueue {
    /// Starts the writer task in `tasks`; it ends once `stop` is cancelled (or every handle is
    /// dropped), after recording what was queued.
    pub fn spawn(store: Store, tasks: &TaskSet, stop: CancellationToken) -> Result<Self, Closed> {
        let (tx, rx) = mpsc::channel(QUEUE);
        tasks.spawn(run(store, rx, stop))?;
        Ok(Self { tx })
    }

    pub async fn buy(&self, job: PurchaseJob) -> Result<Purchase, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((job, reply)).await.map_err(|_| crate::store::WriterStopped)?;
        rx.await.map_err(|_| crate::store::WriterStopped)?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>, stop: CancellationToken) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            job = rx.recv() => job,
            () = stop.cancelled(), if !rx.is_closed() => {
                // No new purchase is accepted; those already queued are still recorded.
                rx.close();
                continue;
            }
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let items: Vec<_> = batch.iter().map(|(j, _)| (j.payment(), j.grant())).collect();
        match store.pay_and_grant_batch(&items).await {
            Ok(results) => {
                drop(items);
                for ((_, reply), result) in batch.drain(..).zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(err) => {
                drop(items);
                tracing::warn!(error = %err, jobs = batch.len(), "purchase batch failed; retrying one by one");
                for (job, reply) in batch.drain(..) {
                    let _ = reply.send(store.pay_and_grant(&job.payment(), &job.grant()).await);
                }
            }
        }
    }
}

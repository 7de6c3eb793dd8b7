//! Prometheus metrics: one registry, the families the service records into, and the text
//! encoding served at `/metrics`. Gauges that mirror the database (pool size) are set at
//! scrape time by the API.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub direction: &'static str,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: &'static str,
}

/// What the group-commit writer records: jobs per transaction, and the time of each
/// transaction's two phases (`execute`: BEGIN through the last statement; `commit`: COMMIT,
/// which on SQLite with `synchronous = FULL` is the WAL's fsync), or of a transaction that is
/// one statement on its own (`single`: a lone inbound message, statement and commit together).
#[derive(Clone, Debug)]
pub struct WriterMetrics {
    pub batch_jobs: Histogram,
    pub batch_seconds: Family<PhaseLabels, Histogram, fn() -> Histogram>,
}

impl WriterMetrics {
    pub(crate) fn new() -> Self {
        Self {
            batch_jobs: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 11)),
            // 20 µs .. ~0.4 s in steps of 25%.
            batch_seconds: Family::new_with_constructor(|| {
                Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.000_02, 1.25, 45))
            }),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    /// Message state transitions, by direction and the state reached.
    pub messages: Family<MessageLabels, Counter>,
    pub pool_numbers: Family<PoolLabels, Gauge>,
    /// Inbound message handed over by the network -> its commit, in seconds.
    pub inbound_commit: Histogram,
    /// Inbound commit -> long-poll response, in seconds.
    pub longpoll_wakeup: Histogram,
    /// Long-polls parked right now, waiting for a message.
    pub longpoll_waiting: Gauge,
    /// Inbound messages claimed for a parked long-poll as they were stored: `handed` (it got
    /// the message) or `returned` (it had left; the claim was undone).
    pub longpoll_handoffs: Family<OutcomeLabels, Counter>,
    /// Inbound commit -> `/sms/code` (or MCP `wait_for_code`) answer carrying its code, in seconds.
    pub code_wakeup: Histogram,
    /// Processing time of one call's 20 ms media tick (both directions), in seconds.
    pub voice_tick: Histogram,
    /// Calls not yet ended.
    pub voice_calls_active: Gauge,
    /// Frames the agent could not take in time (its socket was backed up): dropped, not queued.
    pub voice_frames_dropped: Counter,
    /// Network frames dropped from a jitter buffer grown past its target (delay shed after a burst).
    pub voice_frames_shed: Counter,
    /// The group-commit writer's batches.
    pub writer: WriterMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("agentline");
        let http_requests = Family::<RequestLabels, Counter>::default();
        let messages = Family::<MessageLabels, Counter>::default();
        let pool_numbers = Family::<PoolLabels, Gauge>::default();
        // 20 µs .. ~0.4 s in steps of 25%, fine enough to read a p99 off the buckets.
        let longpoll_wakeup =
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.000_02, 1.25, 45));
        registry.register("http_requests", "HTTP requests by route, method and status", http_requests.clone());
        registry.register("sms_messages", "SMS messages reaching a state, by direction and state", messages.clone());
        registry.register("pool_numbers", "Numbers in the pool, by state", pool_numbers.clone());
        let inbound_commit =
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.000_02, 1.25, 45));
        registry.register(
            "sms_inbound_commit_seconds",
            "Time from an inbound message's arrival from the network to its commit (the acknowledgement follows)",
            inbound_commit.clone(),
        );
        registry.register(
            "sms_longpoll_wakeup_seconds",
            "Time from an inbound message's commit to the long-poll response that carries it",
            longpoll_wakeup.clone(),
        );
        let longpoll_waiting = Gauge::default();
        registry.register("sms_longpoll_waiting", "Long-polls parked waiting for a message", longpoll_waiting.clone());
        let longpoll_handoffs = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sms_longpoll_handoffs",
            "Inbound messages claimed for a parked long-poll as they were stored, by outcome (handed, returned)",
            longpoll_handoffs.clone(),
        );
        let code_wakeup =
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.000_02, 1.25, 45));
        registry.register(
            "sms_code_wakeup_seconds",
            "Time from the commit of a message carrying a one-time code to the wait_for_code answer with it",
            code_wakeup.clone(),
        );
        // 1 µs .. ~0.2 s in steps of 30%.
        let voice_tick = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.000_001, 1.3, 48));
        registry.register(
            "voice_tick_seconds",
            "Processing time of one call's 20 ms media tick (network->agent and agent->network)",
            voice_tick.clone(),
        );
        let voice_calls_active = Gauge::default();
        registry.register("voice_calls_active", "Calls not yet ended", voice_calls_active.clone());
        let voice_frames_dropped = Counter::default();
        registry.register(
            "voice_frames_dropped",
            "Audio frames to agents dropped because the agent's socket was backed up",
            voice_frames_dropped.clone(),
        );
        let voice_frames_shed = Counter::default();
        registry.register(
            "voice_frames_shed",
            "Network audio frames dropped to keep a call's jitter buffer near its target depth",
            voice_frames_shed.clone(),
        );
        let writer = WriterMetrics::new();
        registry.register("store_batch_jobs", "Jobs per group-commit transaction", writer.batch_jobs.clone());
        registry.register(
            "store_batch_seconds",
            "Group-commit transaction time by phase: acquire (waiting for the write connection, when not already held), execute (BEGIN to the last statement) and commit, or single (a one-statement transaction: a lone inbound message, its commit included)",
            writer.batch_seconds.clone(),
        );
        Self {
            registry,
            http_requests,
            messages,
            pool_numbers,
            inbound_commit,
            longpoll_wakeup,
            longpoll_waiting,
            longpoll_handoffs,
            code_wakeup,
            voice_tick,
            voice_calls_active,
            voice_frames_dropped,
            voice_frames_shed,
            writer,
        }
    }
}

impl Metrics {
    pub fn message(&self, direction: &'static str, status: &'static str) {
        self.messages.get_or_create(&MessageLabels { direction, status }).inc();
    }

    pub fn handoff(&self, outcome: &'static str) {
        self.longpoll_handoffs.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("invariant: encoding into a String cannot fail");
        out
    }
}

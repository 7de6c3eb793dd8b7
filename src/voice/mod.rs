//! Voice: calls, their state machine and records, the presence hub, and each call's media
//! pipeline (built from [`crate::media`]; [`recorder`] writes it to disk).
//!
//! [`VoiceService`] places calls (`dial`), takes incoming ones from the network, rings the
//! number's presence sockets, and runs one [`call`] task per call. The database holds the rule
//! of one active call per number (a partial unique index), so it holds across nodes too. Socket
//! I/O is the HTTP edge's: the service sees an agent's stream as two channels.

pub mod call;
pub mod ending;
pub mod recorder;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::clock;
use crate::e164::E164;
use crate::ids::{CallId, SubscriptionId};
use crate::metrics::Metrics;
use crate::store::{CallRow, CallState, CallWrite, HistoryCursor, MessageWriter, Store, StoreError};
use crate::subscriptions::Caller;
use crate::telco::LinkState;
use crate::telco::sip::endpoint_policy::{EndpointError, check_endpoint_uri};
use crate::telco::voice::{DialError, IncomingCall, LegCommand, Refusal, VoiceNetwork};
use call::{CallTask, Control, DialProgress, Direction, State, StreamIo};
use ending::{EndReason, Ending, FinalState};

/// Presence events queued per socket at most; a socket that far behind misses events.
const PRESENCE_QUEUE: usize = 64;
/// Extra time an outgoing call may ring beyond the ring timeout before we give up on it.
const DIAL_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("{field} must be an E.164 number like +15555550123")]
    BadNumber { field: &'static str },
    #[error("a number cannot call itself")]
    SelfCall,
    /// Expired (in its grace period): the number is kept, but no call is placed until renewal.
    #[error("subscription expired; renew it (POST /sms/subscribe, or the subscribe tool) to place calls")]
    NotActive,
    #[error("direction must be outbound, inbound or both")]
    BadDirection,
    #[error("the number is not this subscription's")]
    Forbidden,
    #[error("the number is already on a call")]
    Busy,
    #[error("voice network unavailable")]
    Unavailable,
    #[error("no such call")]
    NotFound,
    #[error("the call already has a stream")]
    AlreadyStreaming,
    /// A SIP endpoint the agent named cannot be used; the text says why.
    #[error("{0}")]
    BadSipUri(#[from] EndpointError),
    /// `callback_sip_uri` on a network that cannot call SIP endpoints.
    #[error("callback_sip_uri needs a SIP trunk: this service runs on the simulated network")]
    SipUnsupported,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A placed call.
#[derive(Debug, Clone)]
pub struct Dialed {
    pub call_id: CallId,
    pub state: DialedState,
}

/// Where a placed call stands when `dial` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialedState {
    Ringing,
    InProgress,
    /// It ended before ringing (busy, refused, the network failed).
    Ended(FinalState),
}

impl DialedState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ringing => "ringing",
            Self::InProgress => "in_progress",
            Self::Ended(state) => state.as_str(),
        }
    }
}

/// A page of the call history, and the cursor of the next page when there is one.
#[derive(Debug)]
pub struct CallPage {
    pub rows: Vec<CallRow>,
    pub next: Option<HistoryCursor>,
}

/// What a call was placed for: from the caller's number (checked when named) to `to`, with the
/// agent's side on a WebSocket stream, or on its own SIP endpoint (`callback_sip_uri`).
#[derive(Debug, Clone, Default)]
pub struct DialRequest {
    /// The number to call from, as the agent wrote it; `None` means the caller's own.
    pub from: Option<String>,
    pub to: String,
    pub callback_sip_uri: Option<String>,
}

/// `direction` of a call-history query: absent, empty or `both` -> both; `outbound`; `inbound`.
pub fn parse_direction(raw: Option<&str>) -> Result<Option<Direction>, VoiceError> {
    match raw {
        None | Some("") | Some("both") => Ok(None),
        Some("outbound") => Ok(Some(Direction::Outbound)),
        Some("inbound") => Ok(Some(Direction::Inbound)),
        Some(_) => Err(VoiceError::BadDirection),
    }
}

/// How calls are run (from the configuration).
#[derive(Debug, Clone)]
pub struct VoiceSettings {
    pub ring_timeout: Duration,
    /// Where to record calls, if at all.
    pub recordings: Option<std::path::PathBuf>,
}

#[derive(Clone)]
pub struct VoiceService {
    inner: Arc<Inner>,
}

struct CallEntry {
    owner: SubscriptionId,
    control: mpsc::Sender<Control>,
    streaming: Arc<AtomicBool>,
}

pub(crate) struct Inner {
    store: Store,
    /// Call state changes go through the group-commit writer: a burst of call set-ups shares commits.
    writer: MessageWriter,
    network: Arc<dyn VoiceNetwork>,
    metrics: Arc<Metrics>,
    ring_timeout: Duration,
    recordings: Option<std::path::PathBuf>,
    /// `ws://host` or `wss://host`, from the public URL.
    stream_base: String,
    calls: Mutex<HashMap<CallId, CallEntry>>,
    presence: Mutex<HashMap<String, Vec<PresenceSocket>>>,
    next_presence: AtomicU64,
    shutdown: watch::Receiver<bool>,
    /// Every call task; [`VoiceService::drain`] joins them.
    call_tasks: crate::tasks::TaskSet,
}

/// One open presence socket: its id and where its events go.
type PresenceSocket = (u64, mpsc::Sender<String>);

/// A presence subscription: events for one number; dropping it unsubscribes.
pub struct Presence {
    pub events: mpsc::Receiver<String>,
    /// Turns true when the service shuts down: the socket should close.
    pub shutdown: watch::Receiver<bool>,
    inner: Arc<Inner>,
    number: String,
    id: u64,
}

impl Drop for Presence {
    fn drop(&mut self) {
        let mut presence = self.inner.presence.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = presence.get_mut(&self.number) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                presence.remove(&self.number);
            }
        }
    }
}

/// A presence event as sent: JSON text.
fn presence_event(value: serde_json::Value) -> String {
    value.to_string()
}

impl Inner {
    /// A call ended: forget it and tell the number's presence sockets.
    fn ended(&self, call_id: &CallId, number: &str, event: String) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).remove(call_id);
        self.metrics.voice_calls_active.dec();
        self.broadcast(number, event);
    }

    fn broadcast(&self, number: &str, event: String) {
        let presence = self.presence.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = presence.get(number) {
            for (_, tx) in list {
                let _ = tx.try_send(event.clone());
            }
        }
    }

    fn stream_url(&self, call_id: &CallId) -> String {
        format!("{}/sms/voice/stream/{call_id}", self.stream_base)
    }

    fn has_presence(&self, number: &str) -> bool {
        self.presence.lock().unwrap_or_else(|e| e.into_inner()).get(number).is_some_and(|l| !l.is_empty())
    }
}

impl VoiceService {
    /// The network calls go over (for readiness and logs).
    pub fn network(&self) -> Arc<dyn VoiceNetwork> {
        self.inner.network.clone()
    }

    /// Starts the service and its task taking incoming calls from `incoming`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        store: Store,
        writer: MessageWriter,
        network: Arc<dyn VoiceNetwork>,
        incoming: mpsc::Receiver<IncomingCall>,
        metrics: Arc<Metrics>,
        settings: VoiceSettings,
        public_url: &str,
        shutdown: watch::Receiver<bool>,
    ) -> (Self, JoinHandle<()>) {
        let stream_base = match public_url.strip_prefix("https://") {
            Some(rest) => format!("wss://{}", rest.trim_end_matches('/')),
            None => format!("ws://{}", public_url.trim_start_matches("http://").trim_end_matches('/')),
        };
        let inner = Arc::new(Inner {
            store,
            writer,
            network,
            metrics,
            ring_timeout: settings.ring_timeout,
            recordings: settings.recordings,
            stream_base,
            calls: Mutex::new(HashMap::new()),
            presence: Mutex::new(HashMap::new()),
            next_presence: AtomicU64::new(1),
            shutdown,
            call_tasks: crate::tasks::TaskSet::new("voice calls"),
        });
        let task = tokio::spawn(take_incoming(inner.clone(), incoming));
        (Self { inner }, task)
    }

    /// Calls left active by a stopped process failed with it; settles them before serving.
    pub async fn settle_interrupted(store: &Store) -> Result<u64, StoreError> {
        store.fail_interrupted_calls(clock::now_ms()).await
    }

    /// The WebSocket URL of a call's audio stream.
    pub fn stream_url(&self, call_id: &CallId) -> String {
        self.inner.stream_url(call_id)
    }

    /// Places a call for `caller` and answers once the far end rings, answers, or refuses. The
    /// rules, in the order they refuse: numbers are E.164, a number does not call itself, the
    /// subscription is paid up, `from` is the caller's own number, the network is up, the
    /// callback endpoint is well-formed, the number is not already on a call.
    pub async fn dial(&self, caller: &Caller, request: DialRequest) -> Result<Dialed, VoiceError> {
        let from = match &request.from {
            Some(raw) => E164::parse(raw.trim()).map_err(|_| VoiceError::BadNumber { field: "phone_number" })?,
            None => caller.number.clone(),
        };
        let to = E164::parse(request.to.trim()).map_err(|_| VoiceError::BadNumber { field: "to" })?;
        if from == to {
            return Err(VoiceError::SelfCall);
        }
        if !caller.is_active(clock::now_ms()) {
            return Err(VoiceError::NotActive);
        }
        if from != caller.number {
            return Err(VoiceError::Forbidden);
        }
        let (owner, callback) = (caller.subscription_id, request.callback_sip_uri);
        if let LinkState::Down { .. } = self.inner.network.link_state() {
            return Err(VoiceError::Unavailable);
        }
        // A malformed endpoint is the caller's mistake: refused before a call row exists.
        if let Some(uri) = &callback {
            check_endpoint_uri(uri)?;
        }
        let call_id = CallId::generate();
        let row = CallWrite::Insert {
            call_id: call_id.clone(),
            owner,
            number: from.as_str().to_owned(),
            direction: Direction::Outbound,
            peer: to.as_str().to_owned(),
            state: CallState::Initiated,
            end_reason: None,
            now_ms: clock::now_ms(),
        };
        if self.inner.writer.call(row).await? == 0 {
            return Err(VoiceError::Busy);
        }
        let fail = |call_id: CallId| CallWrite::End {
            call_id,
            state: CallState::Failed,
            reason: EndReason::Failed,
            sip_code: Some(503),
            at_ms: clock::now_ms(),
        };
        let sip_agent = match callback {
            Some(uri) => match self.inner.network.dial_uri(from.clone(), uri).await {
                Ok(leg) => Some(leg),
                Err(err) => {
                    self.inner.writer.call(fail(call_id.clone())).await?;
                    return Err(match err {
                        DialError::Unavailable => VoiceError::Unavailable,
                        DialError::Unsupported => VoiceError::SipUnsupported,
                        DialError::BadTarget(why) => VoiceError::BadSipUri(why),
                    });
                }
            },
            None => None,
        };
        let leg = match self.inner.network.dial(from.clone(), to.clone()).await {
            Ok(leg) => leg,
            Err(_) => {
                // Dropping the agent's leg hangs it up.
                drop(sip_agent);
                self.inner.writer.call(fail(call_id.clone())).await?;
                return Err(VoiceError::Unavailable);
            }
        };
        let (reply, progress) = oneshot::channel();
        self.spawn_call(CallSetup {
            call_id: call_id.clone(),
            owner,
            number: from.as_str().to_owned(),
            peer: to.into_string(),
            direction: Direction::Outbound,
            state: State::Initiated,
            leg,
            dial_reply: Some(reply),
            ring_for: self.inner.ring_timeout + DIAL_GRACE,
            sip_agent,
        });
        let state = match progress.await {
            Ok(DialProgress::Ringing) => DialedState::Ringing,
            Ok(DialProgress::Answered) => DialedState::InProgress,
            Ok(DialProgress::Ended(Ending { state, .. })) => DialedState::Ended(state),
            Err(_) => DialedState::Ended(FinalState::Failed),
        };
        Ok(Dialed { call_id, state })
    }

    /// Sets (or clears) where `owner`'s incoming calls go: its own SIP endpoint. Checked for
    /// syntax and scheme here; the address is checked when a call is placed to it.
    pub async fn set_inbound_sip_uri(&self, owner: SubscriptionId, uri: Option<&str>) -> Result<(), VoiceError> {
        if let Some(uri) = uri {
            check_endpoint_uri(uri)?;
        }
        Ok(self.inner.store.set_inbound_sip_uri(owner, uri, clock::now_ms()).await?)
    }

    pub async fn inbound_sip_uri(&self, owner: SubscriptionId) -> Result<Option<String>, VoiceError> {
        Ok(self.inner.store.inbound_sip_uri(owner).await?)
    }

    /// Hangs up `owner`'s active call.
    pub fn hangup(&self, owner: SubscriptionId, call_id: &str) -> Result<(), VoiceError> {
        let calls = self.inner.calls.lock().unwrap_or_else(|e| e.into_inner());
        match calls.get(call_id) {
            Some(entry) if entry.owner == owner => {
                let _ = entry.control.try_send(Control::Hangup);
                Ok(())
            }
            _ => Err(VoiceError::NotFound),
        }
    }

    /// Checks that `owner` may open the stream of `call_id` and reserves it; call before the
    /// WebSocket upgrade so refusals are plain HTTP answers.
    pub fn claim_stream(&self, owner: SubscriptionId, call_id: &str) -> Result<StreamClaim, VoiceError> {
        let calls = self.inner.calls.lock().unwrap_or_else(|e| e.into_inner());
        let entry = calls.get(call_id).filter(|e| e.owner == owner).ok_or(VoiceError::NotFound)?;
        if entry.streaming.swap(true, Ordering::AcqRel) {
            return Err(VoiceError::AlreadyStreaming);
        }
        Ok(StreamClaim { control: entry.control.clone() })
    }

    /// Subscribes to `number`'s incoming calls (as the agent wrote it); it must be the caller's.
    pub fn presence(&self, caller: &Caller, number: &str) -> Result<Presence, VoiceError> {
        let number = E164::parse(number).map_err(|_| VoiceError::BadNumber { field: "phone_number" })?;
        if number != caller.number {
            return Err(VoiceError::Forbidden);
        }
        let (tx, events) = mpsc::channel(PRESENCE_QUEUE);
        let id = self.inner.next_presence.fetch_add(1, Ordering::Relaxed);
        self.inner
            .presence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(number.as_str().to_owned())
            .or_default()
            .push((id, tx));
        let shutdown = self.inner.shutdown.clone();
        Ok(Presence { events, shutdown, inner: self.inner.clone(), number: number.as_str().to_owned(), id })
    }

    /// One page of `owner`'s calls, newest first: at most `limit` after `after`, and the cursor
    /// of the next page when there is one.
    pub async fn history(
        &self,
        owner: SubscriptionId,
        direction: Option<Direction>,
        after: Option<HistoryCursor>,
        limit: i64,
    ) -> Result<CallPage, VoiceError> {
        // One row beyond the page says whether another page exists.
        let mut rows = self.inner.store.call_history(owner, direction, after, limit + 1).await?;
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| HistoryCursor { created_at: r.created_at, id: r.id })
        } else {
            None
        };
        Ok(CallPage { rows, next })
    }

    /// Waits (bounded by the caller) until every call task has ended; calls end on the
    /// shutdown signal. No call starts afterwards.
    pub async fn drain(&self) {
        self.inner.call_tasks.join().await;
    }

    fn spawn_call(&self, setup: CallSetup) {
        spawn_call(&self.inner, setup);
    }
}

/// Permission to attach one stream to a call.
pub struct StreamClaim {
    control: mpsc::Sender<Control>,
}

impl StreamClaim {
    /// Hands the agent's socket (as channels) to the call.
    pub async fn attach(self, io: StreamIo) {
        let _ = self.control.send(Control::Attach(io)).await;
    }
}

struct CallSetup {
    call_id: CallId,
    owner: SubscriptionId,
    number: String,
    peer: String,
    direction: Direction,
    state: State,
    leg: crate::telco::voice::Leg,
    dial_reply: Option<oneshot::Sender<DialProgress>>,
    ring_for: Duration,
    sip_agent: Option<crate::telco::voice::Leg>,
}

fn spawn_call(inner: &Arc<Inner>, s: CallSetup) {
    let (control_tx, control) = mpsc::channel(8);
    inner.calls.lock().unwrap_or_else(|e| e.into_inner()).insert(
        s.call_id.clone(),
        // A call bridged to the agent's SIP endpoint takes no WebSocket stream.
        CallEntry { owner: s.owner, control: control_tx, streaming: Arc::new(AtomicBool::new(s.sip_agent.is_some())) },
    );
    inner.metrics.voice_calls_active.inc();
    let task = CallTask {
        inner: inner.clone(),
        call_id: s.call_id,
        number: s.number,
        peer: s.peer,
        direction: s.direction,
        state: s.state,
        leg: s.leg,
        control,
        dial_reply: s.dial_reply,
        ring_deadline: tokio::time::Instant::now() + s.ring_for,
        shutdown: inner.shutdown.clone(),
        sip_agent: s.sip_agent,
    };
    if let Err(closed) = inner.call_tasks.spawn(task.run()) {
        tracing::warn!(error = %closed, "call not started: shutting down");
    }
}

/// Takes incoming calls: refuses numbers we do not serve (404) and numbers with no presence
/// socket or already on a call (busy); otherwise records the call, rings, and tells the
/// number's presence sockets.
async fn take_incoming(inner: Arc<Inner>, mut incoming: mpsc::Receiver<IncomingCall>) {
    let mut shutdown = inner.shutdown.clone();
    loop {
        let call = tokio::select! {
            call = incoming.recv() => match call { Some(c) => c, None => return },
            _ = shutdown.changed() => return,
        };
        if let Err(err) = offer(&inner, call).await {
            tracing::warn!(error = %err, "incoming call not recorded");
        }
    }
}

async fn offer(inner: &Arc<Inner>, call: IncomingCall) -> Result<(), StoreError> {
    let IncomingCall { from, to, leg } = call;
    let Some(owner) = inner.store.number_owner(to.as_str()).await? else {
        let _ = leg.commands.send(LegCommand::Reject(Refusal::NotFound)).await;
        return Ok(());
    };
    let call_id = CallId::generate();
    let row = |state: CallState, end_reason: Option<EndReason>| CallWrite::Insert {
        call_id: call_id.clone(),
        owner,
        number: to.as_str().to_owned(),
        direction: Direction::Inbound,
        peer: from.clone(),
        state,
        end_reason,
        now_ms: clock::now_ms(),
    };
    // The agent's own SIP endpoint takes the call when one is set; it is called now and the
    // caller is answered when it answers.
    if let Some(uri) = inner.store.inbound_sip_uri(owner).await? {
        if inner.writer.call(row(CallState::Ringing, None)).await? == 0 {
            inner.writer.call(row(CallState::Busy, Some(EndReason::Busy))).await?;
            let _ = leg.commands.send(LegCommand::Reject(Refusal::Busy)).await;
            return Ok(());
        }
        let caller = E164::parse(&from).unwrap_or_else(|_| to.clone());
        match inner.network.dial_uri(caller, uri).await {
            Ok(agent) => {
                let _ = leg.commands.send(LegCommand::Ring).await;
                spawn_call(
                    inner,
                    CallSetup {
                        call_id,
                        owner,
                        number: to.as_str().to_owned(),
                        peer: from,
                        direction: Direction::Inbound,
                        state: State::Ringing,
                        leg,
                        dial_reply: None,
                        ring_for: inner.ring_timeout,
                        sip_agent: Some(agent),
                    },
                );
            }
            Err(err) => {
                tracing::info!(%call_id, error = %err, "the number's inbound SIP endpoint cannot be called");
                let end = CallWrite::End {
                    call_id,
                    state: CallState::Busy,
                    reason: EndReason::Busy,
                    sip_code: Some(486),
                    at_ms: clock::now_ms(),
                };
                inner.writer.call(end).await?;
                let _ = leg.commands.send(LegCommand::Reject(Refusal::Busy)).await;
            }
        }
        return Ok(());
    }
    // Nobody listening, or already on a call: busy, and the callee's history says so.
    let listening = inner.has_presence(to.as_str());
    if !listening || inner.writer.call(row(CallState::Ringing, None)).await? == 0 {
        inner.writer.call(row(CallState::Busy, Some(EndReason::Busy))).await?;
        let _ = leg.commands.send(LegCommand::Reject(Refusal::Busy)).await;
        return Ok(());
    }
    let _ = leg.commands.send(LegCommand::Ring).await;
    spawn_call(
        inner,
        CallSetup {
            call_id: call_id.clone(),
            owner,
            number: to.as_str().to_owned(),
            peer: from.clone(),
            direction: Direction::Inbound,
            state: State::Ringing,
            leg,
            dial_reply: None,
            ring_for: inner.ring_timeout,
            sip_agent: None,
        },
    );
    let ringing = serde_json::json!({
        "event": "ringing",
        "call_id": call_id,
        "caller": from,
        "stream_url": inner.stream_url(&call_id),
    });
    inner.broadcast(to.as_str(), presence_event(ringing));
    Ok(())
}

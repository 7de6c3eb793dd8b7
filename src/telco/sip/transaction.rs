//! SIP transactions (RFC 3261 §17, with the Accepted states of RFC 6026), sans-IO: parsed messages
//! and the time go in, bytes to send and events for the transaction user (the UA core) come out.
//!
//! Owns the four state machines and their timers, keyed by the top Via branch:
//!
//! - INVITE client (§17.1.1): Calling retransmits on Timer A (T1 doubling, UDP only) until a
//!   response or Timer B (64*T1) fails it. A 1xx moves it to Proceeding, which stops Timer A.
//!   A 3xx-6xx moves it to Completed: the layer builds and sends the hop-by-hop ACK itself
//!   (§17.1.1.3) and answers each retransmitted final with that ACK, for Timer D (32 s on UDP,
//!   0 on TCP). A 2xx moves it to Accepted (RFC 6026 Timer M, 64*T1), where every 2xx, the
//!   retransmissions included, goes up as [`TxEvent::Response`] so that the core re-sends its ACK.
//! - non-INVITE client (§17.1.2): Trying retransmits on Timer E (T1 doubling to T2, and every T2
//!   once a 1xx has come), Timer F (64*T1) fails it, Completed absorbs retransmitted finals for
//!   Timer K (T4 on UDP, 0 on TCP).
//! - INVITE server (§17.2.1): a new INVITE is answered at once with `100 Trying` (no 200 ms
//!   wait: the layer cannot know whether the core will answer in time), and a retransmitted INVITE
//!   with the last response sent. A 3xx-6xx moves it to Completed: Timer G retransmits it (T1
//!   doubling to T2, UDP only) until the ACK, which is absorbed and moves it to Confirmed (Timer
//!   I, T4 on UDP, 0 on TCP); Timer H (64*T1) without an ACK fails it. A 2xx moves it to Accepted
//!   (RFC 6026 Timer L, 64*T1): the layer also does the core's job of §13.3.1.4 and retransmits
//!   the 2xx (T1 doubling to T2, UDP only) until its ACK; no ACK by Timer L fails the
//!   transaction, and the core should then send BYE.
//! - non-INVITE server (§17.2.2): retransmitted requests are absorbed in Trying and answered with
//!   the last response afterwards; Completed lasts Timer J (64*T1 on UDP, 0 on TCP).
//!
//! Choices the UA core has to know about:
//!
//! - Matching (§17.1.3, §17.2.3): a response goes to the client transaction of its top Via branch
//!   and CSeq method; a request to the server transaction of its top Via branch, sent-by and
//!   method, where an ACK looks for the INVITE. CANCEL has transactions of its own.
//! - The ACK of a 2xx has a branch of its own, so it matches no transaction: it always goes up as
//!   [`TxEvent::Ack`]. The layer itself recognises it as the ACK of an INVITE server transaction
//!   in Accepted by Call-ID, CSeq number and From tag (and To tag, when both carry one) and stops
//!   retransmitting the 2xx; [`TxLayer::ack_received`] does the same by key, for a core that
//!   matched the ACK another way. Both are idempotent. Retransmitted ACKs go up too.
//! - CANCEL (§9.2) is answered by the layer: `200 OK` when it matches an INVITE server
//!   transaction (with the To tag of the last response sent on it, if any), `481` otherwise.
//!   Only when that INVITE has not had a final response yet does the core get
//!   [`TxEvent::CancelFor`]; it must then answer the INVITE with `487 Request Terminated`.
//!   A CANCEL never comes up as [`TxEvent::Request`].
//! - A client CANCEL is sent with [`TxLayer::send_request`] like any request (its branch is the
//!   INVITE's); it bounds the INVITE's Proceeding to 64*T1 from then (§9.1). Without a CANCEL an
//!   INVITE client transaction in Proceeding fails after [`MAX_PROCEEDING`], and so does an INVITE
//!   server transaction the core never answers finally. A non-INVITE server transaction the core
//!   does not answer within 64*T1 fails too. Failing means [`TxEvent::Timeout`] and no more state.
//! - Responses go to where the request came from (the `from` of [`TxLayer::on_message`]), as
//!   RFC 3581 and §18.2.2 on streams do; Via `received`, `maddr` and sent-by are not consulted.
//!   The ACK of a non-2xx goes where the INVITE went.
//! - A request whose top Via has no branch starting with `z9hG4bK` (RFC 2543) is dropped without
//!   an answer, as is a message without a parseable top Via or CSeq; a request that has one but
//!   lacks a sound Call-ID, CSeq of its own method, From or To is answered `400` statelessly.
//!   [`TxLayer::dropped`] counts these. An unmatched response goes up as
//!   [`TxEvent::StrayResponse`].
//! - On a reliable transport (TCP) nothing is retransmitted, the 2xx of an INVITE server included,
//!   and Timers D, I, J, K are 0; Timers B, F, H, L, M still run.
//! - At most [`MAX_TRANSACTIONS`] (or the limit given to [`TxLayer::with_limit`]) live at once: a
//!   new request beyond it is answered `503 Service Unavailable` statelessly, and
//!   [`TxLayer::send_request`] returns [`TxError::Full`]. ACKs never create a transaction.
//!
//! Left to the core: merged-request detection (§8.2.2.2, 482), Max-Forwards, Require, the 2xx ACK
//! itself (built with [`Message::ack_2xx`], sent with [`TxLayer::send_stateless`]), the To tags of
//! its responses, dialogs, and reacting to [`TxEvent::Timeout`]. Outputs queue until
//! [`TxLayer::poll_output`] takes them, so the driver drains the queue after every call.
//!
//! What this module must not do: own a socket, resolve a name, read a clock (every call gets
//! `now`), draw random numbers (branches come in with the requests), or keep unbounded state.
//! Nothing here panics on any message a peer sends.
//!
//! Size: about 950 lines of state machine and 950 of tests (each timer of §17 on UDP and TCP,
//! every matching rule). The four machines share the timer heap and the matching tables.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::message::{BRANCH_MAGIC, Message, Method, Via, reason_phrase};

/// Live transactions at most, client and server together.
pub const MAX_TRANSACTIONS: usize = 16_384;
/// Timer D on an unreliable transport: how long a completed INVITE client transaction absorbs
/// retransmitted finals (§17.1.1.2, "at least 32 seconds").
pub const TIMER_D: Duration = Duration::from_secs(32);
/// How long an INVITE may stay in Proceeding, client or server side, before the transaction
/// fails: the 3 minutes of a proxy's Timer C (§16.6), so that ringing never holds state forever.
pub const MAX_PROCEEDING: Duration = Duration::from_secs(180);
/// Each configured timer is clamped to this, so that deadlines always fit in an [`Instant`].
const MAX_TIMER: Duration = Duration::from_secs(3600);
/// T1 is at least this, so that a retransmission timer always moves time forward.
const MIN_T1: Duration = Duration::from_millis(1);

/// The transport a peer is reached over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    /// Reliable: no retransmissions, and the timers that only absorb retransmissions are 0.
    Tcp,
}

impl Transport {
    pub fn is_reliable(self) -> bool {
        matches!(self, Self::Tcp)
    }
}

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// The timer values of §17.1.1.1 and Table 4.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    /// RTT estimate: the first retransmission interval, and 64*T1 is the transaction timeout.
    pub t1: Duration,
    /// The longest retransmission interval of non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// How long a message may live in the network.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

impl Timers {
    /// 64*T1: Timers B, F, H, J (UDP), L and M.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    fn clamped(self) -> Self {
        let t1 = self.t1.clamp(MIN_T1, MAX_TIMER);
        Self { t1, t2: self.t2.clamp(t1, MAX_TIMER), t4: self.t4.min(MAX_TIMER) }
    }
}

/// Which end of a transaction we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// We sent the request.
    Client,
    /// We received it.
    Server,
}

/// Identifies one transaction: side, top Via branch, method (the INVITE's for its ACK) and, on
/// the server side, the top Via sent-by (§17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    side: Side,
    branch: Box<str>,
    method: Method,
    sent_by: Box<str>,
}

impl TxKey {
    /// The key of the client transaction [`TxLayer::send_request`] starts for a request with this
    /// branch and method (§17.1.3).
    pub fn client(branch: &str, method: Method) -> Self {
        Self { side: Side::Client, branch: branch.into(), method, sent_by: Box::default() }
    }

    fn server(branch: &str, method: Method, sent_by: Box<str>) -> Self {
        Self { side: Side::Server, branch: branch.into(), method, sent_by }
    }

    pub fn side(&self) -> Side {
        self.side
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The top Via sent-by of the request, lower-cased, for a server transaction.
    pub fn sent_by(&self) -> Option<&str> {
        (self.side == Side::Server).then_some(&*self.sent_by)
    }
}

impl fmt::Display for TxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.side {
            Side::Client => write!(f, "client {} {}", self.method, self.branch),
            Side::Server => write!(f, "server {} {} from {}", self.method, self.branch, self.sent_by),
        }
    }
}

/// Why the layer refused what the core asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("send_request needs a request")]
    NotARequest,
    #[error("send_response needs a response")]
    NotAResponse,
    #[error("the message cannot key a transaction: {0}")]
    BadMessage(&'static str),
    #[error("a transaction with this key is live")]
    Duplicate,
    #[error("{limit} transactions are live, the limit")]
    Full { limit: usize },
    #[error("no live server transaction matches the response")]
    NoTransaction,
    #[error("the transaction has sent its final response")]
    Finished,
}

/// What the transaction user (the UA core) gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// A new request; a server transaction was created for it, which [`TxLayer::send_response`]
    /// answers. Never an ACK or a CANCEL.
    Request { key: TxKey, request: Message, from: Peer },
    /// An ACK that no INVITE server transaction absorbed: the ACK of a 2xx, for the dialog.
    Ack { request: Message, from: Peer },
    /// A CANCEL matched INVITE server transaction `invite`, which has no final response yet; the
    /// layer answered the CANCEL with 200, the core answers the INVITE with 487.
    CancelFor { invite: TxKey, cancel: TxKey },
    /// A response for our client transaction `key`: every 1xx, the final, and for an INVITE
    /// every 2xx (retransmissions and other forks included) until Timer M, each to be ACKed.
    /// `peer`: where the request went.
    Response { key: TxKey, response: Message, peer: Peer },
    /// Transaction `key` failed: no response (Timers B, F), no ACK (Timers H, L), or no final
    /// response from the core in time. It is gone.
    Timeout { key: TxKey },
    /// A response that matches no transaction, e.g. a 2xx retransmitted after Timer M; the core
    /// may ACK a 2xx of a dialog it knows.
    StrayResponse { response: Message, from: Peer },
}

/// One thing for the driver to do.
// Outputs are taken off the queue as soon as they are made; boxing the event would only cost an
// allocation and the plain `Output::Event(TxEvent::…)` patterns.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send { to: Peer, bytes: Bytes },
    Event(TxEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InviteClient,
    NonInviteClient,
    InviteServer,
    NonInviteServer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Accepted,
    Confirmed,
}

/// What identifies the ACK of a 2xx we sent (§13.3.1.4): Call-ID, CSeq number and From tag of
/// the INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AckMatch {
    call_id: Box<str>,
    cseq: u32,
    from_tag: Box<str>,
}

impl AckMatch {
    fn of(message: &Message) -> Option<Self> {
        let from = message.from().ok()?;
        Some(Self {
            call_id: message.call_id().ok()?.into(),
            cseq: message.cseq().ok()?.0,
            from_tag: from.tag()?.into(),
        })
    }
}

struct Tx {
    key: TxKey,
    kind: Kind,
    state: State,
    /// Where the request went (client) or came from (server).
    peer: Peer,
    /// What a retransmission sends: the request (client), the last response (server).
    wire: Option<Bytes>,
    /// INVITE client in Completed: the ACK of the final response.
    ack: Option<Bytes>,
    /// INVITE client until its final response: the request the ACK is built from.
    invite: Option<Box<Message>>,
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// When the current state ends: the transaction then fails or terminates.
    expires_at: Instant,
    /// The deadline queued in the heap for this transaction.
    scheduled: Option<Instant>,
    /// INVITE client: the Proceeding deadline a CANCEL set (§9.1).
    cancel_deadline: Option<Instant>,
    /// INVITE server: the To tag of the last response sent.
    to_tag: Option<Box<str>>,
    /// INVITE server in Accepted: how its 2xx ACK is recognised.
    ack_match: Option<AckMatch>,
    /// INVITE server in Accepted: the 2xx was acknowledged.
    acked: bool,
}

impl Tx {
    fn new(key: TxKey, kind: Kind, state: State, peer: Peer, interval: Duration, expires_at: Instant) -> Self {
        Self {
            key,
            kind,
            state,
            peer,
            wire: None,
            ack: None,
            invite: None,
            retransmit_at: None,
            interval,
            expires_at,
            scheduled: None,
            cancel_deadline: None,
            to_tag: None,
            ack_match: None,
            acked: false,
        }
    }

    fn due(&self) -> Instant {
        self.retransmit_at.map_or(self.expires_at, |at| at.min(self.expires_at))
    }
}

/// `now + d`, or `now` in the (clamped-away) case the sum does not fit.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

fn is_rfc3261_branch(branch: &str) -> bool {
    branch.len() > BRANCH_MAGIC.len() && branch.starts_with(BRANCH_MAGIC)
}

/// The sent-by of a Via as a key part: host lower-cased, port as sent.
fn sent_by(via: &Via) -> Box<str> {
    let host = via.host.to_ascii_lowercase();
    match via.port {
        Some(port) => format!("{host}:{port}").into(),
        None => host.into(),
    }
}

/// The To tag of a message, owned.
fn to_tag(message: &Message) -> Option<Box<str>> {
    message.to().ok()?.tag().map(Box::from)
}

/// Whether a request carries the headers every transaction needs, CSeq naming its own method.
fn is_well_formed(request: &Message, method: &Method) -> bool {
    request.call_id().is_ok()
        && request.cseq().is_ok_and(|(_, m)| m == *method)
        && request.from().is_ok()
        && request.to().is_ok()
}

/// The transaction layer: every live client and server transaction of one UA, their timers and
/// the output queue.
pub struct TxLayer {
    timers: Timers,
    limit: usize,
    next_id: u64,
    txs: HashMap<u64, Tx>,
    ids: HashMap<TxKey, u64>,
    /// INVITE server transactions in Accepted, by what their 2xx ACK carries.
    accepted: HashMap<AckMatch, u64>,
    /// Deadlines, earliest first; entries whose transaction moved on are skipped when popped.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    out: VecDeque<Output>,
    dropped: u64,
}

impl TxLayer {
    pub fn new(timers: Timers) -> Self {
        Self::with_limit(timers, MAX_TRANSACTIONS)
    }

    /// A layer with at most `limit` live transactions. Timers are clamped: T1 to at least 1 ms,
    /// T2 to at least T1, each to at most one hour.
    pub fn with_limit(timers: Timers, limit: usize) -> Self {
        Self {
            timers: timers.clamped(),
            limit,
            next_id: 0,
            txs: HashMap::new(),
            ids: HashMap::new(),
            accepted: HashMap::new(),
            heap: BinaryHeap::new(),
            out: VecDeque::new(),
            dropped: 0,
        }
    }

    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// Starts a client transaction: queues the first transmission and arms timers (A/B for
    /// INVITE, E/F otherwise). The top Via branch must start with `z9hG4bK` and the CSeq must name
    /// the request's method. An ACK creates no transaction: it is queued once and its key
    /// returned, which names nothing live. A CANCEL bounds the Proceeding state of the INVITE
    /// with the same branch to 64*T1.
    pub fn send_request(&mut self, request: Message, to: Peer, now: Instant) -> Result<TxKey, TxError> {
        let method = request.method().ok_or(TxError::NotARequest)?.clone();
        let via = request.top_via().map_err(|_| TxError::BadMessage("no top Via"))?;
        let branch = via
            .branch()
            .filter(|b| is_rfc3261_branch(b))
            .ok_or(TxError::BadMessage("the top Via branch does not start with z9hG4bK"))?;
        if !request.cseq().is_ok_and(|(_, m)| m == method) {
            return Err(TxError::BadMessage("the CSeq does not name the request's method"));
        }
        let key = TxKey::client(branch, method.clone());
        let bytes = Bytes::from(request.to_bytes());
        if method == Method::Ack {
            self.send(to, bytes);
            return Ok(key);
        }
        if self.ids.contains_key(&key) {
            return Err(TxError::Duplicate);
        }
        if self.txs.len() >= self.limit {
            return Err(TxError::Full { limit: self.limit });
        }
        if method == Method::Cancel {
            self.cancel_sent(branch, now);
        }
        let t1 = self.timers.t1;
        let expires_at = later(now, self.timers.timeout());
        let mut tx = if method == Method::Invite {
            let mut tx = Tx::new(key.clone(), Kind::InviteClient, State::Calling, to, t1, expires_at);
            tx.invite = Some(Box::new(request));
            tx
        } else {
            Tx::new(key.clone(), Kind::NonInviteClient, State::Trying, to, t1, expires_at)
        };
        if !to.transport.is_reliable() {
            tx.retransmit_at = Some(later(now, t1));
        }
        tx.wire = Some(bytes.clone());
        self.send(to, bytes);
        self.insert(tx);
        Ok(key)
    }

    /// Queues a message outside any transaction: the ACK of a 2xx, or a stateless response.
    pub fn send_stateless(&mut self, message: &Message, to: Peer) {
        self.send(to, Bytes::from(message.to_bytes()));
    }

    /// Sends a response within the server transaction it belongs to (matched by top Via branch
    /// and sent-by and CSeq method, which [`Message::response`] copies from the request). A 1xx
    /// keeps it in Proceeding; a 2xx to INVITE moves it to Accepted (the 2xx is retransmitted, T1
    /// doubling to T2 on UDP, until its ACK or 64*T1, then [`TxEvent::Timeout`]; further 2xx are
    /// passed through); 3xx-6xx to INVITE to Completed (Timer G until the ACK, Timer H); a
    /// non-INVITE final to Completed (Timer J resends it to retransmitted requests).
    pub fn send_response(&mut self, response: Message, now: Instant) -> Result<(), TxError> {
        let code = response.status_code().ok_or(TxError::NotAResponse)?;
        let via = response.top_via().map_err(|_| TxError::BadMessage("no top Via"))?;
        let branch = via.branch().ok_or(TxError::BadMessage("no branch in the top Via"))?;
        let (_, method) = response.cseq().map_err(|_| TxError::BadMessage("no CSeq"))?;
        if method == Method::Ack {
            return Err(TxError::BadMessage("an ACK is not answered"));
        }
        let key = TxKey::server(branch, method, sent_by(&via));
        let id = *self.ids.get(&key).ok_or(TxError::NoTransaction)?;
        let tx = self.txs.get_mut(&id).ok_or(TxError::NoTransaction)?;
        let (t1, timeout) = (self.timers.t1, self.timers.timeout());
        let reliable = tx.peer.transport.is_reliable();
        let mut ack_match = None;
        let mut terminate = false;
        match (tx.kind, tx.state, code) {
            (Kind::InviteServer, State::Proceeding, 100..=199) => {}
            (Kind::InviteServer, State::Proceeding, 200..=299) => {
                tx.state = State::Accepted;
                tx.interval = t1;
                tx.retransmit_at = (!reliable).then(|| later(now, t1));
                tx.expires_at = later(now, timeout);
                ack_match = AckMatch::of(&response);
            }
            (Kind::InviteServer, State::Accepted, 200..=299) => {}
            (Kind::InviteServer, State::Proceeding, _) => {
                tx.state = State::Completed;
                tx.interval = t1;
                tx.retransmit_at = (!reliable).then(|| later(now, t1));
                tx.expires_at = later(now, timeout);
            }
            (Kind::NonInviteServer, State::Trying | State::Proceeding, 100..=199) => tx.state = State::Proceeding,
            (Kind::NonInviteServer, State::Trying | State::Proceeding, _) => {
                tx.state = State::Completed;
                tx.expires_at = later(now, timeout);
                terminate = reliable;
            }
            _ => return Err(TxError::Finished),
        }
        if tx.kind == Kind::InviteServer
            && let Some(tag) = to_tag(&response)
        {
            tx.to_tag = Some(tag);
        }
        let bytes = Bytes::from(response.to_bytes());
        self.out.push_back(Output::Send { to: tx.peer, bytes: bytes.clone() });
        tx.wire = Some(bytes);
        if let Some(ack_match) = ack_match {
            tx.ack_match = Some(ack_match.clone());
            self.accepted.insert(ack_match, id);
        }
        if terminate {
            self.remove(id);
        } else {
            self.schedule(id);
        }
        Ok(())
    }

    /// Feeds one received, parsed message. Retransmitted requests are absorbed (the last response
    /// is resent), responses go to their client transaction, the ACK of a non-2xx is absorbed by
    /// its INVITE server transaction; see the module doc for what goes up.
    pub fn on_message(&mut self, message: Message, from: Peer, now: Instant) {
        if message.is_request() {
            self.on_request(message, from, now);
        } else {
            self.on_response(message, from, now);
        }
    }

    /// The core matched an ACK to the 2xx of INVITE server transaction `invite`: its 2xx is no
    /// longer retransmitted and Timer L will not fail it. Idempotent; any other key is ignored.
    pub fn ack_received(&mut self, invite: &TxKey) {
        let Some(&id) = self.ids.get(invite) else { return };
        if let Some(tx) = self.txs.get_mut(&id) {
            Self::acknowledge(tx);
        }
        self.schedule(id);
    }

    /// Ends a transaction at once without an event (e.g. its connection is gone); whether it was
    /// live.
    pub fn terminate(&mut self, key: &TxKey) -> bool {
        match self.ids.get(key) {
            Some(&id) => self.remove(id).is_some(),
            None => false,
        }
    }

    /// Fires the timers due at `now`.
    pub fn on_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if self.txs.get(&id).is_some_and(|tx| tx.scheduled == Some(at)) {
                self.fire(id, now);
            }
        }
    }

    /// When [`TxLayer::on_timeout`] should be called next; it may be earlier than needed (a timer
    /// that was stopped), never later.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Messages dropped or refused with 400 because they could not be matched (see the module doc).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn send(&mut self, to: Peer, bytes: Bytes) {
        self.out.push_back(Output::Send { to, bytes });
    }

    fn emit(&mut self, event: TxEvent) {
        self.out.push_back(Output::Event(event));
    }

    fn reply_statelessly(&mut self, request: &Message, code: u16, to: Peer) {
        if let Ok(response) = Message::response(request, code, reason_phrase(code), None) {
            self.send_stateless(&response, to);
        }
    }

    fn insert(&mut self, tx: Tx) {
        let id = self.next_id;
        self.next_id += 1;
        self.ids.insert(tx.key.clone(), id);
        self.txs.insert(id, tx);
        self.schedule(id);
    }

    fn remove(&mut self, id: u64) -> Option<Tx> {
        let tx = self.txs.remove(&id)?;
        self.ids.remove(&tx.key);
        if let Some(ack_match) = &tx.ack_match
            && self.accepted.get(ack_match) == Some(&id)
        {
            self.accepted.remove(ack_match);
        }
        Some(tx)
    }

    /// Queues the transaction's current deadline unless it is queued already; rebuilds the heap
    /// when stale entries outnumber the live ones, which bounds it.
    fn schedule(&mut self, id: u64) {
        let Some(tx) = self.txs.get_mut(&id) else { return };
        let due = tx.due();
        if tx.scheduled == Some(due) {
            return;
        }
        tx.scheduled = Some(due);
        self.heap.push(Reverse((due, id)));
        if self.heap.len() > 2 * self.txs.len() + 64 {
            self.heap = self.txs.iter().filter_map(|(&id, tx)| tx.scheduled.map(|at| Reverse((at, id)))).collect();
        }
    }

    fn acknowledge(tx: &mut Tx) {
        if tx.kind == Kind::InviteServer && tx.state == State::Accepted {
            tx.acked = true;
            tx.retransmit_at = None;
        }
    }

    /// A due deadline: the state's end (the transaction fails or terminates), else a
    /// retransmission. Always leaves the transaction gone or with a deadline after `now`.
    fn fire(&mut self, id: u64, now: Instant) {
        let Some(tx) = self.txs.get_mut(&id) else { return };
        if tx.expires_at <= now {
            let failed = match (tx.kind, tx.state) {
                (_, State::Calling | State::Trying | State::Proceeding) | (Kind::InviteServer, State::Completed) => {
                    true
                }
                (Kind::InviteServer, State::Accepted) => !tx.acked,
                _ => false,
            };
            if let Some(tx) = self.remove(id)
                && failed
            {
                self.emit(TxEvent::Timeout { key: tx.key });
            }
            return;
        }
        if tx.retransmit_at.is_some_and(|at| at <= now) {
            let t2 = self.timers.t2;
            let again = match (tx.kind, tx.state) {
                (Kind::InviteClient, State::Calling) => {
                    tx.interval = tx.interval.saturating_mul(2).min(MAX_TIMER);
                    true
                }
                (Kind::NonInviteClient, State::Trying) | (Kind::InviteServer, State::Completed) => {
                    tx.interval = tx.interval.saturating_mul(2).min(t2);
                    true
                }
                (Kind::InviteServer, State::Accepted) if !tx.acked => {
                    tx.interval = tx.interval.saturating_mul(2).min(t2);
                    true
                }
                (Kind::NonInviteClient, State::Proceeding) => {
                    tx.interval = t2;
                    true
                }
                _ => false,
            };
            tx.retransmit_at = again.then(|| later(now, tx.interval));
            if again && let Some(wire) = &tx.wire {
                self.out.push_back(Output::Send { to: tx.peer, bytes: wire.clone() });
            }
        }
        tx.scheduled = None;
        self.schedule(id);
    }

    /// A CANCEL for the INVITE with `branch` is going out: that INVITE gets 64*T1 more to end.
    fn cancel_sent(&mut self, branch: &str, now: Instant) {
        let Some(&id) = self.ids.get(&TxKey::client(branch, Method::Invite)) else { return };
        let deadline = later(now, self.timers.timeout());
        if let Some(tx) = self.txs.get_mut(&id) {
            tx.cancel_deadline = Some(deadline);
            if tx.state == State::Proceeding {
                tx.expires_at = tx.expires_at.min(deadline);
            }
        }
        self.schedule(id);
    }

    fn on_response(&mut self, response: Message, from: Peer, now: Instant) {
        let Some(code) = response.status_code() else { return };
        let (Ok(via), Ok((_, method))) = (response.top_via(), response.cseq()) else {
            self.dropped += 1;
            return;
        };
        let Some(branch) = via.branch() else {
            self.dropped += 1;
            return;
        };
        let Some(&id) = self.ids.get(&TxKey::client(branch, method)) else {
            self.emit(TxEvent::StrayResponse { response, from });
            return;
        };
        let Some(tx) = self.txs.get_mut(&id) else { return };
        let reliable = tx.peer.transport.is_reliable();
        let (t4, timeout) = (self.timers.t4, self.timers.timeout());
        let mut event = None;
        let mut terminate = false;
        match (tx.kind, tx.state) {
            (Kind::InviteClient, State::Calling | State::Proceeding) if code < 200 => {
                if tx.state == State::Calling {
                    tx.state = State::Proceeding;
                    tx.retransmit_at = None;
                    let cap = later(now, MAX_PROCEEDING);
                    tx.expires_at = tx.cancel_deadline.map_or(cap, |d| d.min(cap));
                }
                event = Some(response);
            }
            (Kind::InviteClient, State::Calling | State::Proceeding) if code < 300 => {
                tx.state = State::Accepted;
                tx.retransmit_at = None;
                tx.expires_at = later(now, timeout);
                tx.invite = None;
                tx.wire = None;
                event = Some(response);
            }
            (Kind::InviteClient, State::Calling | State::Proceeding) => {
                let ack = tx.invite.take().and_then(|invite| Message::ack_non_2xx(&invite, &response).ok());
                if let Some(ack) = ack {
                    let bytes = Bytes::from(ack.to_bytes());
                    self.out.push_back(Output::Send { to: tx.peer, bytes: bytes.clone() });
                    tx.ack = Some(bytes);
                }
                tx.state = State::Completed;
                tx.retransmit_at = None;
                tx.wire = None;
                tx.expires_at = later(now, TIMER_D);
                terminate = reliable;
                event = Some(response);
            }
            (Kind::InviteClient, State::Completed) if code >= 300 => {
                if let Some(ack) = &tx.ack {
                    self.out.push_back(Output::Send { to: tx.peer, bytes: ack.clone() });
                }
            }
            (Kind::InviteClient, State::Accepted) if (200..300).contains(&code) => event = Some(response),
            (Kind::NonInviteClient, State::Trying | State::Proceeding) if code < 200 => {
                tx.state = State::Proceeding;
                event = Some(response);
            }
            (Kind::NonInviteClient, State::Trying | State::Proceeding) => {
                tx.state = State::Completed;
                tx.retransmit_at = None;
                tx.wire = None;
                tx.expires_at = later(now, t4);
                terminate = reliable || t4.is_zero();
                event = Some(response);
            }
            // Completed absorbs retransmitted finals; anything else is out of order.
            _ => {}
        }
        if let Some(response) = event {
            let (key, peer) = (tx.key.clone(), tx.peer);
            self.emit(TxEvent::Response { key, response, peer });
        }
        if terminate {
            self.remove(id);
        } else {
            self.schedule(id);
        }
    }

    fn on_request(&mut self, request: Message, from: Peer, now: Instant) {
        let Some(method) = request.method().cloned() else { return };
        let Ok(via) = request.top_via() else {
            self.dropped += 1;
            return;
        };
        let Some(branch) = via.branch().filter(|b| is_rfc3261_branch(b)) else {
            self.dropped += 1;
            return;
        };
        if !is_well_formed(&request, &method) {
            self.dropped += 1;
            if method != Method::Ack {
                self.reply_statelessly(&request, 400, from);
            }
            return;
        }
        let sent_by = sent_by(&via);
        match method {
            Method::Ack => self.on_ack(request, branch, sent_by, from, now),
            Method::Cancel => self.on_cancel(request, branch, sent_by, from, now),
            method => self.on_server_request(request, method, branch, sent_by, from, now),
        }
    }

    fn on_server_request(
        &mut self,
        request: Message,
        method: Method,
        branch: &str,
        sent_by: Box<str>,
        from: Peer,
        now: Instant,
    ) {
        let key = TxKey::server(branch, method, sent_by);
        if let Some(&id) = self.ids.get(&key) {
            self.resend_last_response(id);
            return;
        }
        if self.txs.len() >= self.limit {
            self.reply_statelessly(&request, 503, from);
            return;
        }
        let t1 = self.timers.t1;
        let tx = if key.method == Method::Invite {
            let mut tx =
                Tx::new(key.clone(), Kind::InviteServer, State::Proceeding, from, t1, later(now, MAX_PROCEEDING));
            if let Ok(trying) = Message::response(&request, 100, "Trying", None) {
                let bytes = Bytes::from(trying.to_bytes());
                self.send(from, bytes.clone());
                tx.wire = Some(bytes);
            }
            tx
        } else {
            let expires_at = later(now, self.timers.timeout());
            Tx::new(key.clone(), Kind::NonInviteServer, State::Trying, from, t1, expires_at)
        };
        self.insert(tx);
        self.emit(TxEvent::Request { key, request, from });
    }

    /// A retransmitted request: answered with the last response, except in the states that
    /// absorb it silently (non-INVITE Trying, INVITE Accepted and Confirmed).
    fn resend_last_response(&mut self, id: u64) {
        let Some(tx) = self.txs.get(&id) else { return };
        if matches!(tx.state, State::Proceeding | State::Completed)
            && let Some(wire) = &tx.wire
        {
            self.out.push_back(Output::Send { to: tx.peer, bytes: wire.clone() });
        }
    }

    fn on_ack(&mut self, request: Message, branch: &str, sent_by: Box<str>, from: Peer, now: Instant) {
        let key = TxKey::server(branch, Method::Invite, sent_by);
        if let Some(&id) = self.ids.get(&key) {
            let Some(tx) = self.txs.get_mut(&id) else { return };
            match tx.state {
                State::Completed => {
                    tx.state = State::Confirmed;
                    tx.retransmit_at = None;
                    tx.expires_at = later(now, self.timers.t4);
                    if tx.peer.transport.is_reliable() || self.timers.t4.is_zero() {
                        self.remove(id);
                    } else {
                        self.schedule(id);
                    }
                }
                // An ACK of our 2xx that reused the INVITE's branch (RFC 6026 §8.7: to the TU).
                State::Accepted => {
                    Self::acknowledge(tx);
                    self.schedule(id);
                    self.emit(TxEvent::Ack { request, from });
                }
                // Confirmed absorbs retransmitted ACKs; before a final response an ACK means
                // nothing.
                _ => {}
            }
            return;
        }
        if let Some(id) = self.match_2xx_ack(&request) {
            if let Some(tx) = self.txs.get_mut(&id) {
                Self::acknowledge(tx);
            }
            self.schedule(id);
        }
        self.emit(TxEvent::Ack { request, from });
    }

    /// The INVITE server transaction in Accepted whose 2xx `ack` acknowledges.
    fn match_2xx_ack(&self, ack: &Message) -> Option<u64> {
        let id = *self.accepted.get(&AckMatch::of(ack)?)?;
        let tx = self.txs.get(&id)?;
        match (to_tag(ack), &tx.to_tag) {
            (Some(ours), Some(theirs)) if ours != *theirs => None,
            _ => Some(id),
        }
    }

    fn on_cancel(&mut self, request: Message, branch: &str, sent_by: Box<str>, from: Peer, now: Instant) {
        let key = TxKey::server(branch, Method::Cancel, sent_by.clone());
        if let Some(&id) = self.ids.get(&key) {
            self.resend_last_response(id);
            return;
        }
        if self.txs.len() >= self.limit {
            self.reply_statelessly(&request, 503, from);
            return;
        }
        let invite = TxKey::server(branch, Method::Invite, sent_by);
        let (code, tag, pending) = match self.ids.get(&invite).and_then(|id| self.txs.get(id)) {
            Some(tx) => (200, tx.to_tag.clone(), tx.state == State::Proceeding),
            None => (481, None, false),
        };
        let Ok(response) = Message::response(&request, code, reason_phrase(code), tag.as_deref()) else {
            self.dropped += 1;
            return;
        };
        let bytes = Bytes::from(response.to_bytes());
        self.send(from, bytes.clone());
        if !from.transport.is_reliable() {
            let expires_at = later(now, self.timers.timeout());
            let mut tx =
                Tx::new(key.clone(), Kind::NonInviteServer, State::Completed, from, self.timers.t1, expires_at);
            tx.wire = Some(bytes);
            self.insert(tx);
        }
        if pending {
            self.emit(TxEvent::CancelFor { invite, cancel: key });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telco::sip::message::{Framing, NameAddr, RequestHead, Uri};

    fn udp() -> Peer {
        Peer { addr: "198.51.100.7:5060".parse().expect("addr"), transport: Transport::Udp }
    }

    fn tcp() -> Peer {
        Peer { addr: "198.51.100.7:5060".parse().expect("addr"), transport: Transport::Tcp }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn head(method_cseq: u32, branch: &str) -> RequestHead {
        RequestHead {
            uri: Uri::sip(Some("+14155550123"), "sip.example.net"),
            via: Via::new("UDP", "203.0.113.5", Some(5060), branch),
            from: NameAddr::new(Uri::sip(Some("+15555550100"), "203.0.113.5")).with_tag("fromtag"),
            to: NameAddr::new(Uri::sip(Some("+14155550123"), "sip.example.net")),
            call_id: "call-1@203.0.113.5".to_owned(),
            cseq: method_cseq,
            max_forwards: 70,
            route: vec![NameAddr::new(Uri::sip(None, "proxy.example.net").with_param("lr", None))],
            contact: Some(NameAddr::new(Uri::sip(Some("agent"), "203.0.113.5"))),
        }
    }

    fn invite(branch: &str) -> Message {
        Message::invite(&head(1, branch), Some(b"v=0\r\n".to_vec())).expect("invite")
    }

    fn request(method: Method, branch: &str) -> Message {
        Message::request(method, &head(2, branch)).expect("request")
    }

    /// A response to `request`, with a To tag except for 100.
    fn reply(request: &Message, code: u16) -> Message {
        let tag = (code > 100).then_some("totag");
        Message::response(request, code, reason_phrase(code), tag).expect("response")
    }

    /// The ACK a peer sends for our 2xx: a new branch, the dialog's tags.
    fn ack_2xx(invite: &Message, ok: &Message, branch: &str) -> Message {
        let mut ok = ok.clone();
        ok.headers_mut().set("Contact", "<sip:+14155550123@198.51.100.7>").expect("contact");
        Message::ack_2xx(invite, &ok, &Via::new("UDP", "203.0.113.5", Some(5060), branch), None).expect("ack")
    }

    fn drain(layer: &mut TxLayer) -> Vec<Output> {
        std::iter::from_fn(|| layer.poll_output()).collect()
    }

    fn sent(outputs: &[Output]) -> Vec<Message> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send { bytes, .. } => Some(Message::parse(bytes, Framing::Datagram).expect("parses")),
                Output::Event(_) => None,
            })
            .collect()
    }

    fn events(outputs: &[Output]) -> Vec<TxEvent> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(event) => Some(event.clone()),
                Output::Send { .. } => None,
            })
            .collect()
    }

    /// Fires every deadline up to `start + until`, in order; each output with its offset.
    fn run(layer: &mut TxLayer, start: Instant, until: Duration) -> Vec<(Duration, Output)> {
        let mut out = Vec::new();
        while let Some(at) = layer.next_deadline() {
            if at > start + until {
                break;
            }
            layer.on_timeout(at);
            out.extend(drain(layer).into_iter().map(|o| (at - start, o)));
        }
        out
    }

    fn send_times(timeline: &[(Duration, Output)]) -> Vec<Duration> {
        timeline.iter().filter(|(_, o)| matches!(o, Output::Send { .. })).map(|(t, _)| *t).collect()
    }

    fn timeouts(timeline: &[(Duration, Output)]) -> Vec<(Duration, TxKey)> {
        timeline
            .iter()
            .filter_map(|(t, o)| match o {
                Output::Event(TxEvent::Timeout { key }) => Some((*t, key.clone())),
                _ => None,
            })
            .collect()
    }

    fn ms_list(list: &[u64]) -> Vec<Duration> {
        list.iter().map(|&n| ms(n)).collect()
    }

    fn layer() -> TxLayer {
        TxLayer::new(Timers::default())
    }

    // ---- INVITE client ----

    #[test]
    fn invite_client_retransmits_on_timer_a_and_fails_on_timer_b_over_udp() {
        let mut layer = layer();
        let start = Instant::now();
        let key = layer.send_request(invite("z9hG4bKc1"), udp(), start).expect("sent");
        assert_eq!(key, TxKey::client("z9hG4bKc1", Method::Invite));
        assert_eq!(key.side(), Side::Client);
        let first = drain(&mut layer);
        assert_eq!(sent(&first), vec![invite("z9hG4bKc1")]);
        assert_eq!(layer.len(), 1);

        let timeline = run(&mut layer, start, secs(40));
        assert_eq!(send_times(&timeline), ms_list(&[500, 1500, 3500, 7500, 15_500, 31_500]));
        assert_eq!(timeouts(&timeline), vec![(secs(32), key)]);
        assert!(layer.is_empty());
        assert_eq!(layer.next_deadline(), None);
    }

    #[test]
    fn invite_client_over_tcp_does_not_retransmit_but_timer_b_runs() {
        let mut layer = layer();
        let start = Instant::now();
        let key = layer.send_request(invite("z9hG4bKc1"), tcp(), start).expect("sent");
        assert_eq!(sent(&drain(&mut layer)).len(), 1);
        let timeline = run(&mut layer, start, secs(40));
        assert!(send_times(&timeline).is_empty());
        assert_eq!(timeouts(&timeline), vec![(secs(32), key)]);
        assert!(layer.is_empty());
    }

    #[test]
    fn a_provisional_response_stops_timer_a() {
        let mut layer = layer();
        let start = Instant::now();
        let request = invite("z9hG4bKc1");
        let key = layer.send_request(request.clone(), udp(), start).expect("sent");
        drain(&mut layer);
        layer.on_timeout(start + ms(500));
        assert_eq!(sent(&drain(&mut layer)).len(), 1);

        let ringing = reply(&request, 180);
        layer.on_message(ringing.clone(), udp(), start + ms(700));
        let outputs = drain(&mut layer);
        assert_eq!(
            events(&outputs),
            vec![TxEvent::Response { key: key.clone(), response: ringing.clone(), peer: udp() }]
        );
        assert!(sent(&outputs).is_empty());
        // A second 1xx goes up as well.
        layer.on_message(ringing.clone(), udp(), start + ms(800));
        assert_eq!(events(&drain(&mut layer)).len(), 1);

        // Nothing more until the Proceeding cap, long after Timer B would have fired.
        let timeline = run(&mut layer, start, secs(170));
        assert!(timeline.is_empty(), "{timeline:?}");
        assert_eq!(layer.len(), 1);
        let timeline = run(&mut layer, start, secs(200));
        assert_eq!(timeouts(&timeline), vec![(ms(700) + MAX_PROCEEDING, key)]);
    }

    #[test]
    fn a_486_is_acked_once_with_the_headers_of_17_1_1_3_and_its_retransmission_again() {
        let mut layer = layer();
        let start = Instant::now();
        let request = invite("z9hG4bKc1");
        let key = layer.send_request(request.clone(), udp(), start).expect("sent");
        drain(&mut layer);
        layer.on_message(reply(&request, 180), udp(), start + ms(100));
        drain(&mut layer);

        let busy = reply(&request, 486);
        layer.on_message(busy.clone(), udp(), start + secs(2));
        let outputs = drain(&mut layer);
        assert_eq!(events(&outputs), vec![TxEvent::Response { key: key.clone(), response: busy.clone(), peer: udp() }]);
        let acks = sent(&outputs);
        assert_eq!(acks.len(), 1);
        let ack = &acks[0];
        assert!(matches!(&outputs[0], Output::Send { to, .. } if *to == udp()));
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(ack.request_uri(), request.request_uri());
        assert_eq!(ack.call_id(), request.call_id());
        assert_eq!(ack.header("From"), request.header("From"));
        assert_eq!(ack.header("To"), busy.header("To"));
        assert_eq!(ack.to().expect("to").tag(), Some("totag"));
        assert_eq!(ack.cseq().expect("cseq"), (1, Method::Ack));
        assert_eq!(ack.headers().list("Via"), vec![request.headers().list("Via")[0]]);
        assert_eq!(
            ack.headers().get_all("Route").collect::<Vec<_>>(),
            request.headers().get_all("Route").collect::<Vec<_>>()
        );
        assert_eq!(ack.max_forwards(), Ok(Some(70)));
        assert!(ack.body().is_empty());
        let Output::Send { bytes, .. } = &outputs[0] else { panic!("a send first") };
        assert!(bytes.windows(17).any(|w| w == b"Content-Length: 0"));

        // The retransmitted 486: the same ACK again, no event.
        layer.on_message(busy.clone(), udp(), start + secs(3));
        let again = drain(&mut layer);
        assert!(events(&again).is_empty());
        assert_eq!(sent(&again), acks);

        // Timer D ends it silently 32 s later; no retransmission meanwhile.
        let timeline = run(&mut layer, start, secs(33));
        assert!(timeline.is_empty(), "{timeline:?}");
        assert_eq!(layer.len(), 1);
        let timeline = run(&mut layer, start, secs(35));
        assert!(timeline.is_empty());
        assert!(layer.is_empty());
        // Afterwards a 486 is stray.
        layer.on_message(busy.clone(), udp(), start + secs(40));
        assert_eq!(events(&drain(&mut layer)), vec![TxEvent::StrayResponse { response: busy, from: udp() }]);
    }

    #[test]
    fn a_final_over_tcp_ends_the_invite_client_at_once() {
        let mut layer = layer();
        let start = Instant::now();
        let request = invite("z9hG4bKc1");
        layer.send_request(request.clone(), tcp(), start).expect("sent");
        drain(&mut layer);
        layer.on_message(reply(&request, 603), tcp(), start + secs(1));
        let outputs = drain(&mut layer);
        assert_eq!(sent(&outputs).len(), 1, "the ACK");
        assert_eq!(events(&outputs).len(), 1);
        assert!(layer.is_empty());
    }

    #[test]
    fn every_2xx_goes_up_until_timer_m() {
        let mut layer = layer();
        let start = Instant::now();
        let request = invite("z9hG4bKc1");
        let key = layer.send_request(request.clone(), udp(), start).expect("sent");
        drain(&mut layer);
        let ok = reply(&request, 200);
        layer.on_message(ok.clone(), udp(), start + secs(1));
        let outputs = drain(&mut layer);
        assert!(sent(&outputs).is_empty(), "the 2xx ACK is the core's");
        assert_eq!(events(&outputs), vec![TxEvent::Response { key: key.clone(), response: ok.clone(), peer: udp() }]);

        layer.on_message(ok.clone(), udp(), start + ms(1500));
        assert_eq!(
            events(&drain(&mut layer)),
            vec![TxEvent::Response { key: key.clone(), response: ok.clone(), peer: udp() }]
        );
        // No retransmission of the INVITE in Accepted, and a late 486 is ignored.
        layer.on_message(reply(&request, 486), udp(), start + secs(2));
        assert!(drain(&mut layer).is_empty());
        let timeline = run(&mut layer, start, secs(32));
        assert!(timeline.is_empty(), "{timeline:?}");
        assert_eq!(layer.len(), 1);

        // Timer M (64*T1 after the first 2xx) ends it without an event.
        let timeline = run(&mut layer, start, secs(33));
        assert!(timeline.is_empty());
        assert!(layer.is_empty());
        layer.on_message(ok.clone(), udp(), start + secs(34));
        assert_eq!(events(&drain(&mut layer)), vec![TxEvent::StrayResponse { response: ok, from: udp() }]);
    }

    #[test]
    fn a_cancel_has_its_own_transaction_and_bounds_the_invite() {
        let mut layer = layer();
        let start = Instant::now();
        let request = invite("z9hG4bKc1");
        let invite_key = layer.send_request(request.clone(), udp(), start).expect("sent");
        layer.on_message(reply(&request, 180), udp(), start + ms(100));
        drain(&mut layer);

        let cancel = Message::cancel(&request).expect("cancel");
        let cancel_key = layer.send_request(cancel.clone(), udp(), start + secs(10)).expect("sent");
        assert_eq!(cancel_key, TxKey::client("z9hG4bKc1", Method::Cancel));
        assert_ne!(cancel_key, invite_key);
        assert_eq!(layer.len(), 2);
        assert_eq!(sent(&drain(&mut layer)), vec![cancel.clone()]);

        // The 200 for the CANCEL goes to the CANCEL, the 487 to the INVITE.
        let cancel_ok = reply(&cancel, 200);
        layer.on_message(cancel_ok.clone(), udp(), start + ms(10_100));
        assert_eq!(
            events(&drain(&mut layer)),
            vec![TxEvent::Response { key: cancel_key, response: cancel_ok, peer: udp() }]
        );
        assert_eq!(layer.len(), 2);

        // No 487: the INVITE fails 64*T1 after the CANCEL, not after the 3-minute cap.
        let timeline = run(&mut layer, start, secs(60));
        assert_eq!(timeouts(&timeline), vec![(secs(42), invite_key)]);
        assert!(layer.is_empty());
    }

    // ---- non-INVITE client ----

    #[test]
    fn non_invite_client_retransmits_on_timer_e_and_fails_on_timer_f() {
        let mut layer = layer();
        let start = Instant::now();
        let key = layer.send_request(request(Method::Options, "z9hG4bKo1"), udp(), start).expect("sent");
        assert_eq!(sent(&drain(&mut layer)).len(), 1);
        let timeline = run(&mut layer, start, secs(40));
        let expected = [500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500];
        assert_eq!(send_times(&timeline), ms_list(&expected));
        assert_eq!(timeouts(&timeline), vec![(secs(32), key)]);
        assert!(layer.is_empty());
    }

    #[test]
    fn non_invite_client_over_tcp_only_times_out() {
        let mut layer = layer();
        let start = Instant::now();
        let key = layer.send_request(request(Method::Bye, "z9hG4bKb1"), tcp(), start).expect("sent");
        drain(&mut layer);
        let timeline = run(&mut layer, start, secs(40));
        assert!(send_times(&timeline).is_empty());
        assert_eq!(timeouts(&timeline), vec![(secs(32), key)]);
    }

    #[test]
    fn a_provisional_response_slows_timer_e_to_t2() {
        let mut layer = layer();
        let start = Instant::now();
        let options = request(Method::Options, "z9hG4bKo1");
        let key = layer.send_request(options.clone(), udp(), start).expect("sent");
        drain(&mut layer);
        let trying = reply(&options, 100);
        layer.on_message(trying.clone(), udp(), start + ms(200));
        assert_eq!(
            events(&drain(&mut layer)),
            vec![TxEvent::Response { key: key.clone(), response: trying, peer: udp() }]
        );
        let timeline = run(&mut layer, start, secs(40));
        let expected = [500, 4500, 8500, 12_500, 16_500, 20_500, 24_500, 28_500];
        assert_eq!(send_times(&timeline), ms_list(&expected));
        assert_eq!(timeouts(&timeline), vec![(secs(32), key)]);
    }

    #[test]
    fn timer_k_absorbs_retransmitted_finals() {
        let mut layer = layer();
        let start = Instant::now();
        let options = request(Method::Options, "z9hG4bKo1");
        let key = layer.send_request(options.clone(), udp(), start).expect("sent");
        drain(&mut layer);
        let ok = reply(&options, 200);
        layer.on_message(ok.clone(), udp(), start + ms(300));
        assert_eq!(events(&drain(&mut layer)), vec![TxEvent::Response { key, response: ok.clone(), peer: udp() }]);
        layer.on_message(ok.clone(), udp(), start + ms(900));
        assert!(drain(&mut layer).is_empty());
        assert_eq!(layer.len(), 1);
        // No retransmission after the final; Timer K (T4) ends it silently.
        let timeline = run(&mut layer, start, ms(5200));
        assert!(timeline.is_empty(), "{timeline:?}");
        assert_eq!(layer.len(), 1);
        let timeline = run(&mut layer, start, ms(5300));
        assert!(timeline.is_empty());
        assert!(layer.is_empty());
        layer.on_message(ok.clone(), udp(), start + secs(6));
        assert!(matches!(&events(&drain(&mut layer))[..], [TxEvent::StrayResponse { .. }]));
    }

    #[test]
    fn timer_k_is_zero_over_tcp() {
        let mut layer = layer();
        let start = Instant::now();
        let options = request(Method::Options, "z9hG4bKo1");
        layer.send_request(options.clone(), tcp(), start).expect("sent");
        drain(&mut layer);
        layer.on_message(reply(&options, 404), tcp(), start + ms(300));
        assert_eq!(events(&drain(&mut layer)).len(), 1);
        assert!(layer.is_empty());
    }

    #[test]
    fn send_request_refuses_what_cannot_key_a_transaction() {
        let mut layer = layer();
        let now = Instant::now();
        let options = request(Method::Options, "z9hG4bKo1");
        assert_eq!(layer.send_request(reply(&options, 200), udp(), now), Err(TxError::NotARequest));

        let mut no_magic = options.clone();
        no_magic.headers_mut().set("Via", "SIP/2.0/UDP 203.0.113.5;branch=1234").expect("via");
        assert!(matches!(layer.send_request(no_magic, udp(), now), Err(TxError::BadMessage(_))));
        let mut no_via = options.clone();
        no_via.headers_mut().remove("Via");
        assert!(matches!(layer.send_request(no_via, udp(), now), Err(TxError::BadMessage(_))));
        let mut wrong_cseq = options.clone();
        wrong_cseq.headers_mut().set("CSeq", "2 INVITE").expect("cseq");
        assert!(matches!(layer.send_request(wrong_cseq, udp(), now), Err(TxError::BadMessage(_))));

        layer.send_request(options.clone(), udp(), now).expect("sent");
        assert_eq!(layer.send_request(options, udp(), now), Err(TxError::Duplicate));
        assert_eq!(layer.len(), 1);
        assert_eq!(drain(&mut layer).len(), 1);
    }

    #[test]
    fn an_ack_sent_through_send_request_creates_no_transaction() {
        let mut layer = layer();
        let now = Instant::now();
        let inv = invite("z9hG4bKc1");
        let ack = ack_2xx(&inv, &reply(&inv, 200), "z9hG4bKa1");
        let key = layer.send_request(ack.clone(), udp(), now).expect("sent");
        assert_eq!(key.method(), &Method::Ack);
        assert!(layer.is_empty());
        assert_eq!(sent(&drain(&mut layer)), vec![ack.clone()]);
        layer.send_stateless(&ack, udp());
        assert_eq!(sent(&drain(&mut layer)), vec![ack]);
        assert_eq!(layer.next_deadline(), None);
    }

    // ---- INVITE server ----

    /// A layer that has received `invite("z9hG4bKs1")` at `start`, outputs drained.
    fn server_with_invite(peer: Peer, start: Instant) -> (TxLayer, TxKey, Message) {
        let mut layer = layer();
        let request = invite("z9hG4bKs1");
        layer.on_message(request.clone(), peer, start);
        let outputs = drain(&mut layer);
        let [Output::Send { to, bytes }, Output::Event(TxEvent::Request { key, request: got, from })] = &outputs[..]
        else {
            panic!("100 Trying then the request: {outputs:?}");
        };
        assert_eq!((*to, *from), (peer, peer));
        assert_eq!(got, &request);
        let trying = Message::parse(bytes, Framing::Datagram).expect("parses");
        assert_eq!(trying.status_code(), Some(100));
        assert_eq!(trying, Message::response(&request, 100, "Trying", None).expect("100"));
        assert_eq!(trying.headers().list("Via"), request.headers().list("Via"));
        assert!(trying.to().expect("to").tag().is_none());
        assert!(trying.body().is_empty());
        assert_eq!(key.side(), Side::Server);
        assert_eq!(key.method(), &Method::Invite);
        assert_eq!(key.branch(), "z9hG4bKs1");
        assert_eq!(key.sent_by(), Some("203.0.113.5:5060"));
        (layer, key.clone(), request)
    }

    #[test]
    fn a_retransmitted_invite_gets_the_last_response_and_no_event() {
        let start = Instant::now();
        let (mut layer, key, request) = server_with_invite(udp(), start);
        layer.on_message(request.clone(), udp(), start + ms(500));
        let outputs = drain(&mut layer);
        assert!(events(&outputs).is_empty());
        assert_eq!(sent(&outputs).iter().map(Message::status_code).collect::<Vec<_>>(), vec![Some(100)]);

        let ringing = reply(&request, 180);
        layer.send_response(ringing.clone(), start + secs(1)).expect("sent");
        assert_eq!(sent(&drain(&mut layer)), vec![ringing.clone()]);
        layer.on_message(request.clone(), udp(), start + secs(2));
        let outputs = drain(&mut layer);
        assert!(events(&outputs).is_empty());
        assert_eq!(sent(&outputs), vec![ringing]);
        // Provisional responses are not retransmitted by the layer.
        assert!(run(&mut layer, start, secs(100)).is_empty());
        assert_eq!(layer.len(), 1);
        // The core never answering finally fails it at the cap.
        let timeline = run(&mut layer, start, secs(200));
        assert_eq!(timeouts(&timeline), vec![(MAX_PROCEEDING, key)]);
        assert!(layer.is_empty());
    }

    #[test]
    fn a_486_is_retransmitted_on_timer_g_until_the_ack_which_is_absorbed() {
        let start = Instant::now();
        let (mut layer, _key, request) = server_with_invite(udp(), start);
        let busy = reply(&request, 486);
        layer.send_response(busy.clone(), start).expect("sent");
        assert_eq!(sent(&drain(&mut layer)), vec![busy.clone()]);
        assert_eq!(layer.send_response(reply(&request, 500), start), Err(TxError::Finished));
        assert_eq!(layer.send_response(reply(&request, 200), start), Err(TxError::Finished));

        let timeline = run(&mut layer, start, ms(12_000));
        assert_eq!(send_times(&timeline), ms_list(&[500, 1500, 3500, 7500, 11_500]));
        assert!(sent(&timeline.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>()).iter().all(|m| *m == busy));
        // A retransmitted INVITE in Completed gets the 486.
        layer.on_message(request.clone(), udp(), start + ms(12_100));
        assert_eq!(sent(&drain(&mut layer)), vec![busy.clone()]);

        // The ACK (same branch as the INVITE) is absorbed and stops Timer G.
        let ack = Message::ack_non_2xx(&request, &busy).expect("ack");
        layer.on_message(ack.clone(), udp(), start + ms(12_200));
        assert!(drain(&mut layer).is_empty());
        layer.on_message(ack.clone(), udp(), start + ms(12_300));
        assert!(drain(&mut layer).is_empty(), "Confirmed absorbs ACKs");
        layer.on_message(request.clone(), udp(), start + ms(12_400));
        assert!(drain(&mut layer).is_empty(), "Confirmed absorbs INVITEs");
        assert_eq!(layer.len(), 1);
        // Timer I (T4) ends it silently.
        let timeline = run(&mut layer, start, secs(60));
        assert!(timeline.is_empty(), "{timeline:?}");
        assert!(layer.is_empty());
    }

    #[test]
    fn no_ack_for_a_486_fails_on_timer_h() {
        let start = Instant::now();
        let (mut layer, key, request) = server_with_invite(udp(), start);
        layer.send_response(reply(&request, 486), start + secs(1)).expect("sent");
        drain(&mut layer);
        let timeline = run(&mut layer, start, secs(40));
        assert_eq!(
            send_times(&timeline),
            ms_list(&[1500, 2500, 4500, 8500, 12_500, 16_500, 20_500, 24_500, 28_500, 32_500])
        );
        assert_eq!(timeouts(&timeline), vec![(secs(33), key)]);
        assert!(layer.is_empty());
    }

    #[test]
    fn over_tcp_a_486_is_not_retransmitted_and_the_ack_ends_the_transaction() {
        let start = Instant::now();
        let (mut layer, _key, request) = server_with_invite(tcp(), start);
        let busy = reply(&request, 486);
        layer.send_response(busy.clone(), start).expect("sent");
        drain(&mut layer);
        assert!(run(&mut layer, start, secs(10)).is_empty());
        layer.on_message(Message::ack_non_2xx(&request, &busy).expect("ack"), tcp(), start + secs(10));
        assert!(drain(&mut layer).is_empty());
        assert!(layer.is_empty(), "Timer I is 0 over TCP");
    }

    #[test]
    fn a_2xx_is_retransmitted_until_ack_received() {
        let start = Instant::now();
        let (mut layer, key, request) = server_with_invite(udp(), start);
        let ok = reply(&request, 200);
        layer.send_response(ok.clone(), start).expect("sent");
        assert_eq!(sent(&drain(&mut layer)), vec![ok.clone()]);
        let timeline = run(&mut layer, start, secs(8));
        assert_eq!(send_times(&timeline), ms_list(&[500, 1500, 3500, 7500]));
        // A retransmitted INVITE in Accepted is absorbed.
        layer.on_message(request.clone(), udp(), start + secs(8));
        assert!(drain(&mut layer).is_empty());

        layer.ack_received(&key);
        layer.ack_received(&key);
        assert!(drain(&mut layer).is_empty());
        let timeline = run(&mut layer, start, secs(31));
        assert!(timeline.is_empty(), "{timeline:?}");
        assert_eq!(layer.len(), 1, "Accepted lasts Timer L");
        let timeline = run(&mut layer, start, secs(33));
        assert!(timeline.is_empty(), "no Timeout once acknowledged: {timeline:?}");
        assert!(layer.is_empty());
    }

    #[test]
    fn an_unacknowledged_2xx_fails_on_timer_l() {
        let start = Instant::now();
        let (mut layer, key, request) = server_with_invite(udp(), start);
        layer.send_response(reply(&request, 200), start).expect("sent");
        drain(&mut layer);
        let timeline = run(&mut layer, start, secs(40));
        assert_eq!(
            send_times(&timeline),
            ms_list(&[500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500])
        );
        assert_eq!(timeouts(&timeline), vec![(secs(32), key)]);
        assert!(layer.is_empty());
    }

    #[test]
    fn over_tcp_a_2xx_is_sent_once_and_still_waits_for_its_ack() {
        let start = Instant::now();
        let (mut layer, key, request) = server_with_invite(tcp(), start);
        layer.send_response(reply(&request, 200), start).expect("sent");
        assert_eq!(sent(&drain(&mut layer)).len(), 1);
        let timeline = run(&mut layer, start, secs(40));
        assert!(send_times(&timeline).is_empty());
        assert_eq!(timeouts(&timeline), vec![(secs(32), key)]);
    }

    #[test]
    fn the_ack_of_a_2xx_goes_up_and_stops_the_retransmissions() {
        let start = Instant::now();
        let (mut layer, _key, request) = server_with_invite(udp(), start);
        let ok = reply(&request, 200);
        layer.send_response(ok.clone(), start).expect("sent");
        drain(&mut layer);
        // A second 2xx from the core in Accepted is passed through.
        layer.send_response(ok.clone(), start + ms(100)).expect("passed through");
        assert_eq!(sent(&drain(&mut layer)), vec![ok.clone()]);

        // An ACK for another dialog goes up but stops nothing.
        let mut other = ack_2xx(&request, &ok, "z9hG4bKa0");
        other.headers_mut().set("To", "<sip:+14155550123@sip.example.net>;tag=othertag").expect("to");
        layer.on_message(other.clone(), udp(), start + ms(200));
        assert_eq!(events(&drain(&mut layer)), vec![TxEvent::Ack { request: other, from: udp() }]);

        let timeline = run(&mut layer, start, ms(1600));
        assert_eq!(send_times(&timeline), ms_list(&[500, 1500]));
        let ack = ack_2xx(&request, &ok, "z9hG4bKa1");
        layer.on_message(ack.clone(), udp(), start + ms(1600));
        let outputs = drain(&mut layer);
        assert_eq!(events(&outputs), vec![TxEvent::Ack { request: ack.clone(), from: udp() }]);
        assert!(sent(&outputs).is_empty());
        let timeline = run(&mut layer, start, secs(40));
        assert!(send_times(&timeline).is_empty(), "stopped at 1.6 s");
        assert!(timeouts(&timeline).is_empty());
        assert!(layer.is_empty());
    }

    #[test]
    fn an_ack_matching_nothing_goes_up() {
        let mut layer = layer();
        let inv = invite("z9hG4bKs9");
        let ack = ack_2xx(&inv, &reply(&inv, 200), "z9hG4bKa9");
        layer.on_message(ack.clone(), udp(), Instant::now());
        assert_eq!(events(&drain(&mut layer)), vec![TxEvent::Ack { request: ack, from: udp() }]);
        assert!(layer.is_empty());
    }

    #[test]
    fn an_ack_reusing_the_invite_branch_in_accepted_goes_up_and_acknowledges() {
        let start = Instant::now();
        let (mut layer, _key, request) = server_with_invite(udp(), start);
        let ok = reply(&request, 200);
        layer.send_response(ok.clone(), start).expect("sent");
        drain(&mut layer);
        let mut ack = ack_2xx(&request, &ok, "z9hG4bKs1");
        ack.headers_mut().set("Call-ID", "unrelated").expect("call-id");
        layer.on_message(ack.clone(), udp(), start + ms(100));
        assert_eq!(events(&drain(&mut layer)), vec![TxEvent::Ack { request: ack, from: udp() }]);
        assert!(run(&mut layer, start, secs(40)).is_empty());
        assert!(layer.is_empty());
    }

    // ---- non-INVITE server ----

    #[test]
    fn non_invite_server_absorbs_retransmissions() {
        let mut layer = layer();
        let start = Instant::now();
        let bye = request(Method::Bye, "z9hG4bKs2");
        layer.on_message(bye.clone(), udp(), start);
        let outputs = drain(&mut layer);
        let [Output::Event(TxEvent::Request { key, .. })] = &outputs[..] else { panic!("{outputs:?}") };
        assert_eq!(key.method(), &Method::Bye);
        let key = key.clone();

        // In Trying a retransmission is absorbed silently.
        layer.on_message(bye.clone(), udp(), start + ms(500));
        assert!(drain(&mut layer).is_empty());
        let ok = reply(&bye, 200);
        layer.send_response(ok.clone(), start + ms(600)).expect("sent");
        assert_eq!(sent(&drain(&mut layer)), vec![ok.clone()]);
        assert_eq!(layer.send_response(ok.clone(), start + ms(600)), Err(TxError::Finished));
        // In Completed it is answered with the final, and no event.
        layer.on_message(bye.clone(), udp(), start + ms(1500));
        assert_eq!(drain(&mut layer).iter().filter(|o| matches!(o, Output::Event(_))).count(), 0);
        layer.on_message(bye.clone(), udp(), start + ms(1600));
        assert_eq!(sent(&drain(&mut layer)), vec![ok]);
        // Timer J: 64*T1, silent, no retransmission of the final on its own.
        let timeline = run(&mut layer, start, secs(32));
        assert!(timeline.is_empty(), "{timeline:?}");
        assert_eq!(layer.len(), 1);
        assert!(run(&mut layer, start, secs(33)).is_empty());
        assert!(layer.is_empty());
        assert!(!layer.ids.contains_key(&key));
    }

    #[test]
    fn non_invite_server_provisional_then_final_and_timer_j_zero_over_tcp() {
        let mut layer = layer();
        let start = Instant::now();
        let register = Message::register(&head(7, "z9hG4bKs3"), 3600).expect("register");
        layer.on_message(register.clone(), tcp(), start);
        drain(&mut layer);
        let trying = reply(&register, 100);
        layer.send_response(trying.clone(), start).expect("sent");
        drain(&mut layer);
        layer.on_message(register.clone(), tcp(), start + ms(10));
        assert_eq!(sent(&drain(&mut layer)), vec![trying]);
        layer.send_response(reply(&register, 200), start + ms(20)).expect("sent");
        assert_eq!(sent(&drain(&mut layer)).len(), 1);
        assert!(layer.is_empty());
        // Now it is a new request again.
        layer.on_message(register, tcp(), start + ms(30));
        assert!(matches!(&events(&drain(&mut layer))[..], [TxEvent::Request { .. }]));
    }

    #[test]
    fn an_unanswered_non_invite_request_fails_after_64_t1() {
        let mut layer = layer();
        let start = Instant::now();
        layer.on_message(request(Method::Info, "z9hG4bKs4"), udp(), start);
        let [Output::Event(TxEvent::Request { key, .. })] = &drain(&mut layer)[..] else { panic!() };
        let key = key.clone();
        let timeline = run(&mut layer, start, secs(40));
        assert_eq!(timeouts(&timeline), vec![(secs(32), key)]);
    }

    #[test]
    fn send_response_without_a_transaction() {
        let mut layer = layer();
        let now = Instant::now();
        let bye = request(Method::Bye, "z9hG4bKs2");
        assert_eq!(layer.send_response(reply(&bye, 200), now), Err(TxError::NoTransaction));
        assert_eq!(layer.send_response(bye, now), Err(TxError::NotAResponse));
        // The sent-by is part of the server key.
        let options = request(Method::Options, "z9hG4bKs5");
        layer.on_message(options.clone(), udp(), now);
        drain(&mut layer);
        let mut elsewhere = reply(&options, 200);
        elsewhere.headers_mut().set("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKs5").expect("via");
        assert_eq!(layer.send_response(elsewhere, now), Err(TxError::NoTransaction));
        layer.send_response(reply(&options, 200), now).expect("sent");
    }

    // ---- CANCEL ----

    #[test]
    fn a_cancel_of_a_ringing_invite_is_answered_and_reported() {
        let start = Instant::now();
        let (mut layer, invite_key, request) = server_with_invite(udp(), start);
        layer.send_response(reply(&request, 180), start).expect("sent");
        drain(&mut layer);

        let cancel = Message::cancel(&request).expect("cancel");
        layer.on_message(cancel.clone(), udp(), start + secs(2));
        let outputs = drain(&mut layer);
        let answers = sent(&outputs);
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].status_code(), Some(200));
        assert_eq!(answers[0].cseq().expect("cseq"), (1, Method::Cancel));
        assert_eq!(answers[0].to().expect("to").tag(), Some("totag"), "the tag of the 180");
        let [TxEvent::CancelFor { invite, cancel: cancel_key }] = &events(&outputs)[..] else { panic!("{outputs:?}") };
        assert_eq!(invite, &invite_key);
        assert_eq!(cancel_key.method(), &Method::Cancel);
        assert_eq!(cancel_key.branch(), invite_key.branch());

        // A retransmitted CANCEL: the 200 again, no second event.
        layer.on_message(cancel.clone(), udp(), start + ms(2500));
        let outputs = drain(&mut layer);
        assert!(events(&outputs).is_empty());
        assert_eq!(sent(&outputs), answers);

        // The core ends the INVITE with 487; its ACK is absorbed.
        let terminated = reply(&request, 487);
        layer.send_response(terminated.clone(), start + ms(2600)).expect("sent");
        drain(&mut layer);
        layer.on_message(Message::ack_non_2xx(&request, &terminated).expect("ack"), udp(), start + secs(3));
        assert!(drain(&mut layer).is_empty());

        // A CANCEL after the final still gets 200, but the core hears nothing.
        let mut late = cancel.clone();
        late.headers_mut().set("CSeq", "1 CANCEL").expect("cseq");
        late.headers_mut().set("Via", "SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKs1").expect("via");
        assert!(layer.terminate(cancel_key));
        layer.on_message(late, udp(), start + secs(4));
        let outputs = drain(&mut layer);
        assert!(events(&outputs).is_empty());
        assert_eq!(sent(&outputs)[0].status_code(), Some(200));
    }

    #[test]
    fn a_cancel_matching_nothing_gets_481() {
        let mut layer = layer();
        let cancel = Message::cancel(&invite("z9hG4bKnone")).expect("cancel");
        layer.on_message(cancel, udp(), Instant::now());
        let outputs = drain(&mut layer);
        assert!(events(&outputs).is_empty());
        let answers = sent(&outputs);
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].status_code(), Some(481));
    }

    // ---- bounds and garbage ----

    #[test]
    fn the_cap_refuses_new_transactions() {
        let mut layer = TxLayer::with_limit(Timers::default(), 2);
        let now = Instant::now();
        layer.send_request(request(Method::Options, "z9hG4bK1"), udp(), now).expect("sent");
        layer.on_message(request(Method::Options, "z9hG4bK2"), udp(), now);
        drain(&mut layer);
        assert_eq!(layer.len(), 2);
        assert_eq!(
            layer.send_request(request(Method::Options, "z9hG4bK3"), udp(), now),
            Err(TxError::Full { limit: 2 })
        );

        let incoming = request(Method::Options, "z9hG4bK4");
        layer.on_message(incoming.clone(), udp(), now);
        let outputs = drain(&mut layer);
        assert!(events(&outputs).is_empty());
        assert_eq!(sent(&outputs), vec![Message::response(&incoming, 503, "Service Unavailable", None).expect("503")]);
        layer.on_message(Message::cancel(&invite("z9hG4bK5")).expect("cancel"), udp(), now);
        assert_eq!(sent(&drain(&mut layer))[0].status_code(), Some(503));
        // A retransmission of a live one is still absorbed, and ACKs need no room.
        layer.on_message(request(Method::Options, "z9hG4bK2"), udp(), now);
        assert!(drain(&mut layer).is_empty());
        let inv = invite("z9hG4bK6");
        layer.on_message(ack_2xx(&inv, &reply(&inv, 200), "z9hG4bK7"), udp(), now);
        assert!(matches!(&events(&drain(&mut layer))[..], [TxEvent::Ack { .. }]));
        assert_eq!(layer.len(), 2);
    }

    #[test]
    fn the_default_cap_holds_at_max_transactions() {
        let mut layer = layer();
        let now = Instant::now();
        for i in 0..MAX_TRANSACTIONS {
            layer.send_request(request(Method::Options, &format!("z9hG4bK{i}")), tcp(), now).expect("room");
        }
        assert_eq!(layer.len(), MAX_TRANSACTIONS);
        let refused = layer.send_request(request(Method::Options, "z9hG4bKlast"), tcp(), now);
        assert_eq!(refused, Err(TxError::Full { limit: MAX_TRANSACTIONS }));
        layer.on_timeout(now + secs(32));
        assert!(layer.is_empty());
        assert!(layer.heap.is_empty());
    }

    #[test]
    fn rfc_2543_and_malformed_messages_are_dropped_or_refused() {
        let mut layer = layer();
        let now = Instant::now();
        let mut old = request(Method::Options, "z9hG4bKx");
        old.headers_mut().set("Via", "SIP/2.0/UDP 203.0.113.5;branch=1234").expect("via");
        layer.on_message(old, udp(), now);
        let mut no_branch = request(Method::Options, "z9hG4bKx");
        no_branch.headers_mut().set("Via", "SIP/2.0/UDP 203.0.113.5").expect("via");
        layer.on_message(no_branch, udp(), now);
        let mut no_via = request(Method::Options, "z9hG4bKx");
        no_via.headers_mut().remove("Via");
        layer.on_message(no_via, udp(), now);
        assert!(drain(&mut layer).is_empty());
        assert_eq!(layer.dropped(), 3);

        let mut wrong_cseq = request(Method::Options, "z9hG4bKx");
        wrong_cseq.headers_mut().set("CSeq", "2 BYE").expect("cseq");
        layer.on_message(wrong_cseq, udp(), now);
        assert_eq!(sent(&drain(&mut layer))[0].status_code(), Some(400));
        let mut no_call_id = request(Method::Ack, "z9hG4bKx");
        no_call_id.headers_mut().remove("Call-ID");
        layer.on_message(no_call_id, udp(), now);
        assert!(drain(&mut layer).is_empty(), "no answer to an ACK");

        let mut response = reply(&request(Method::Options, "z9hG4bKx"), 200);
        response.headers_mut().remove("CSeq");
        layer.on_message(response, udp(), now);
        assert!(drain(&mut layer).is_empty());
        assert_eq!(layer.dropped(), 6);
        assert!(layer.is_empty());
    }

    #[test]
    fn zero_timers_are_clamped_and_do_not_spin() {
        let zero = Timers { t1: Duration::ZERO, t2: Duration::ZERO, t4: Duration::ZERO };
        let mut layer = TxLayer::new(zero);
        assert_eq!(layer.timers().t1, MIN_T1);
        assert_eq!(layer.timers().t2, MIN_T1);
        let start = Instant::now();
        let options = request(Method::Options, "z9hG4bKo1");
        layer.send_request(options.clone(), udp(), start).expect("sent");
        let timeline = run(&mut layer, start, secs(1));
        assert_eq!(timeouts(&timeline).len(), 1);
        assert_eq!(send_times(&timeline).len(), 1 + 63);
        let huge = Timers { t1: Duration::MAX, t2: Duration::MAX, t4: Duration::MAX };
        let mut layer = TxLayer::new(huge);
        layer.send_request(options, udp(), start).expect("sent");
        assert!(layer.next_deadline().is_some_and(|at| at > start));
    }

    #[test]
    fn stale_deadlines_do_not_pile_up() {
        let mut layer = layer();
        let start = Instant::now();
        // Each INVITE's Timer A entry goes stale when its 1xx arrives.
        for i in 0..200 {
            let inv = invite(&format!("z9hG4bKc{i}"));
            layer.send_request(inv.clone(), udp(), start).expect("sent");
            layer.on_message(reply(&inv, 180), udp(), start);
            let key = TxKey::client(&format!("z9hG4bKc{i}"), Method::Invite);
            assert!(layer.terminate(&key));
        }
        assert!(layer.heap.len() <= 64 + 2, "{}", layer.heap.len());
        assert!(!layer.terminate(&TxKey::client("z9hG4bKc0", Method::Invite)));
    }

    #[test]
    fn random_messages_never_panic_and_state_stays_bounded() {
        use crate::test_rng::XorShift;
        let mut rng = XorShift(0x5DEE_CE66_D1CE_4E5B);
        let inv = invite("z9hG4bKf1");
        let ok = reply(&inv, 200);
        let seeds: Vec<Vec<u8>> = vec![
            inv.to_bytes(),
            reply(&inv, 100).to_bytes(),
            reply(&inv, 180).to_bytes(),
            ok.to_bytes(),
            reply(&inv, 486).to_bytes(),
            Message::ack_non_2xx(&inv, &reply(&inv, 486)).expect("ack").to_bytes(),
            ack_2xx(&inv, &ok, "z9hG4bKf2").to_bytes(),
            Message::cancel(&inv).expect("cancel").to_bytes(),
            request(Method::Bye, "z9hG4bKf3").to_bytes(),
            reply(&request(Method::Bye, "z9hG4bKf3"), 200).to_bytes(),
        ];
        let mut layer = TxLayer::with_limit(Timers::default(), 8);
        let start = Instant::now();
        let mut now = start;
        let mut parsed = 0;
        for round in 0..20_000 {
            let mut bytes = seeds[rng.below(seeds.len())].clone();
            for _ in 0..rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = b"z9hG4bK01 ;=:,<>@\r\nSIP/2.0ACKINVITECANCEL"[rng.below(41)];
            }
            let peer = if rng.below(2) == 0 { udp() } else { tcp() };
            if let Ok(message) = Message::parse(&bytes, Framing::Datagram) {
                parsed += 1;
                match rng.below(4) {
                    0 => {
                        let _ = layer.send_request(message, peer, now);
                    }
                    1 => {
                        let _ = layer.send_response(message, now);
                    }
                    _ => layer.on_message(message, peer, now),
                }
            }
            if round % 7 == 0 {
                now += ms(rng.below(3000) as u64);
                layer.on_timeout(now);
            }
            drain(&mut layer);
            assert!(layer.len() <= 8);
            assert!(layer.heap.len() <= 2 * layer.len() + 64 + 1);
        }
        assert!(parsed > 1000, "{parsed}");
        layer.on_timeout(now + secs(3600));
        drain(&mut layer);
        assert!(layer.is_empty());
        assert!(layer.accepted.is_empty());
    }
}

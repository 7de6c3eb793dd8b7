//! The SIP user agent for the carrier trunk: a [`VoiceNetwork`] over SIP + RTP.
//!
//! One task, the core, owns every piece of SIP state: the transaction layer
//! ([`super::transaction`]), the dialogs (one per call, keyed by Call-ID), the registration, and
//! the timers. It reacts to three inputs: messages from the transports ([`super::transport`]),
//! commands from the legs it handed out (ring, answer, hang up, DTMF) and from `dial`, and its own
//! deadlines. Each call's media run in their own task ([`crate::telco::rtp::session`]), steered
//! through a watch channel when a re-INVITE moves them.
//!
//! Outbound: INVITE with an SDP offer (G.722, PCMU, PCMA as configured, telephone-event), one digest retry on 401/407,
//! 180 → ringing, 183 with SDP → early media, 2xx → ACK and answered, 3xx-6xx and timeouts mapped
//! to the call's hang-up cause; an agent hanging up first sends CANCEL (and, when the 200 crosses
//! it, ACK then BYE). Inbound: an INVITE from the trunk for one of our numbers is offered to the
//! voice service (which rings the presence sockets, or refuses with 486); numbers we do not hold
//! get 404, sources other than the trunk 403. In dialog: BYE either way, re-INVITE and UPDATE
//! answered with the current SDP, OPTIONS answered, RFC 4028 session timers (we refresh with a
//! re-INVITE when we are the refresher and hang up when the far end's refresh never comes), and
//! SIP INFO `application/dtmf-relay` digits.
//!
//! What this module must not do: block, hold a lock across an await, or trust a peer-supplied
//! length (the codecs below bound every message).
//!
//! Size: about 1,780 lines of code and 470 of tests. The core is one select loop whose handlers
//! share the call table; what is pure has left it ([`super::dialog`], [`super::message`],
//! [`super::endpoint_policy`]). Registration with its digest retries, session-timer refreshes
//! and the per-call RTP binding are the next pieces to move out.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::dialog::{Action, Dialog, Event};
use super::digest::{AuthKind, DigestRequest};
use super::message::{Message, Method, NameAddr, Refresher, RequestHead, Uri, Via};
use super::sdp::{self, Connection, LocalMedia, Negotiated, Origin, SessionDescription};
use super::transaction::{Output, Peer, Timers, Transport as Kind, TxEvent, TxKey, TxLayer};
use super::transport::{INBOUND_QUEUE, Inbound, SipTransport};
use crate::e164::E164;
use crate::future::BoxFuture;
use crate::tasks::TaskSet;
use crate::telco::rtp::session::{self as media, MediaChannels, RemoteMedia};
use crate::telco::voice::{
    Codec, DialError, EVENT_QUEUE, HangupCause, IncomingCall, Leg, LegCommand, LegEvent, MEDIA_QUEUE, Refusal,
    VoiceNetwork,
};
use crate::telco::{LinkState, is_public};

/// Says whether a number is one of ours (the number pool).
pub type Owned = Arc<dyn Fn(&E164) -> bool + Send + Sync>;

/// Calls in progress at most; further INVITEs get 503 and dials `Unavailable`.
pub const MAX_CALLS: usize = 4096;
/// Commands queued towards the core at most.
const COMMAND_QUEUE: usize = 4096;
/// Received messages handled in one turn of the core before commands and timers.
const INBOUND_BATCH: usize = 64;
/// RFC 4028 Min-SE: the smallest session interval we accept.
const MIN_SE_SECS: u64 = 90;
const USER_AGENT: &str = concat!("agentline/", env!("CARGO_PKG_VERSION"));
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";
/// How long the core's shutdown waits for the calls' media and command relays to end once their
/// calls are gone; what still runs then is aborted. Well inside the app's drain timeout.
const CALL_TASKS_DRAIN: Duration = Duration::from_secs(2);

/// What the SIP network needs to run, from the configuration.
#[derive(Debug, Clone)]
pub struct SipSettings {
    pub trunk_host: String,
    pub trunk_port: u16,
    pub tcp: bool,
    /// Digest credentials; empty user = IP-authenticated trunk.
    pub user: String,
    pub password: String,
    pub listen: SocketAddr,
    /// The IP advertised in Via, Contact and SDP; `None` = the listening IP, or the one the
    /// route to the trunk leaves from when listening on all interfaces.
    pub public_ip: Option<IpAddr>,
    /// The SIP port advertised; `None` = the listening port.
    pub public_port: Option<u16>,
    pub register: bool,
    pub register_expires: Duration,
    /// Session interval offered; zero disables session timers.
    pub session_expires: Duration,
    /// An outbound call without a final answer this long is cancelled (`no_answer`).
    pub invite_timeout: Duration,
    pub rtp_ports: (u16, u16),
    /// Offered and accepted, in preference order.
    pub codecs: Vec<sdp::Codec>,
    /// Jitter buffer depth of calls over the trunk, in 20 ms frames.
    pub jitter_frames: usize,
    /// Whether agents' SIP endpoints may be on loopback or private addresses (tests, a PBX on
    /// the operator's own network); off, such URIs are refused.
    pub allow_private_endpoints: bool,
    /// Networks the carrier sends from besides the trunk host's addresses (its published
    /// signalling ranges): INVITEs are taken from these, and agents' endpoints may not be there.
    pub carrier_networks: Vec<Cidr>,
    pub timers: Timers,
}

/// The voice network over the trunk.
pub struct SipNetwork {
    commands: mpsc::Sender<Command>,
    link: watch::Receiver<LinkState>,
    local: SocketAddr,
    allow_private_endpoints: bool,
    carrier: Carrier,
    trunk_port: u16,
    /// Our own signalling address as advertised: never an agent's endpoint either.
    public: SocketAddr,
}

impl std::fmt::Debug for SipNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipNetwork").field("local", &self.local).finish_non_exhaustive()
    }
}

enum Command {
    Dial {
        from: E164,
        to: E164,
        reply: oneshot::Sender<Result<Leg, DialError>>,
    },
    /// A call to an agent's own SIP endpoint, resolved to `peer`.
    DialUri {
        from: E164,
        uri: Uri,
        peer: Peer,
        reply: oneshot::Sender<Result<Leg, DialError>>,
    },
    Leg {
        call: u64,
        command: Option<LegCommand>,
    },
}

impl SipNetwork {
    /// Binds the transports and starts the core. Incoming calls for numbers `owned` says are
    /// ours go to `incoming`.
    pub async fn start(
        settings: SipSettings,
        incoming: mpsc::Sender<IncomingCall>,
        owned: Owned,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<(Self, Vec<JoinHandle<()>>)> {
        let trunk_ips: Vec<IpAddr> = tokio::net::lookup_host((settings.trunk_host.as_str(), settings.trunk_port))
            .await?
            .map(|a| a.ip())
            .collect();
        let trunk_addr = SocketAddr::new(
            *trunk_ips.first().ok_or_else(|| std::io::Error::other("the trunk host resolves to no address"))?,
            settings.trunk_port,
        );
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let (transport, mut tasks) = SipTransport::bind(settings.listen, inbound_tx, stop.clone()).await?;
        let local = transport.local_addr();
        let public_ip = match settings.public_ip {
            Some(ip) => ip,
            None if !local.ip().is_unspecified() => local.ip(),
            None => route_ip(trunk_addr).unwrap_or(local.ip()),
        };
        let public = SocketAddr::new(public_ip, settings.public_port.unwrap_or(local.port()));
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let initial =
            if settings.register { LinkState::Down { reason: "not registered yet".to_owned() } } else { LinkState::Up };
        let (link_tx, link_rx) = watch::channel(initial);
        let allow_private_endpoints = settings.allow_private_endpoints;
        let carrier = Carrier { trunk: trunk_ips.clone(), networks: settings.carrier_networks.clone() };
        let trunk = Peer { addr: trunk_addr, transport: if settings.tcp { Kind::Tcp } else { Kind::Udp } };
        let trunk_port = settings.trunk_port;
        let core = Core {
            tx: TxLayer::new(settings.timers),
            settings,
            outbox: Vec::new(),
            listen_ip: local.ip(),
            trunk,
            carrier: carrier.clone(),
            public,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            by_tx: HashMap::new(),
            next_id: 1,
            incoming,
            owned,
            commands: commands_tx.clone(),
            rtp_cursor: rand::random(),
            link: link_tx,
            registration: Registration::default(),
            call_tasks: TaskSet::new("sip call media"),
        };
        tasks.push(tokio::spawn(core.run(transport, inbound_rx, commands_rx, stop)));
        Ok((
            Self { commands: commands_tx, link: link_rx, local, allow_private_endpoints, carrier, trunk_port, public },
            tasks,
        ))
    }

    fn carrier_port(&self) -> u16 {
        self.trunk_port
    }

    /// Where SIP is received (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl VoiceNetwork for SipNetwork {
    fn name(&self) -> &'static str {
        "sip"
    }

    fn dial(&self, from: E164, to: E164) -> BoxFuture<'_, Result<Leg, DialError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.commands.send(Command::Dial { from, to, reply }).await.map_err(|_| DialError::Unavailable)?;
            answer.await.unwrap_or(Err(DialError::Unavailable))
        })
    }

    fn dial_uri(&self, from: E164, uri: String) -> BoxFuture<'_, Result<Leg, DialError>> {
        Box::pin(async move {
            let (uri, peer) =
                resolve_endpoint(&uri, self.allow_private_endpoints).await.map_err(DialError::BadTarget)?;
            self.carrier
                .refuses(peer.addr, self.carrier_port(), &[self.public, self.local], self.allow_private_endpoints)
                .map_err(DialError::BadTarget)?;
            let (reply, answer) = oneshot::channel();
            self.commands
                .send(Command::DialUri { from, uri, peer, reply })
                .await
                .map_err(|_| DialError::Unavailable)?;
            answer.await.unwrap_or(Err(DialError::Unavailable))
        })
    }

    fn link_state(&self) -> LinkState {
        self.link.borrow().clone()
    }
}

use super::endpoint_policy::{Carrier, may_target, resolve_endpoint};
pub use super::endpoint_policy::{Cidr, EndpointError};

/// The local address the kernel would send from towards `to` (no packet is sent).
fn route_ip(to: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr =
        if to.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(to).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn branch() -> String {
    format!("z9hG4bK{}", token())
}

/// The far end's media as negotiated; for a dialog with an agent's endpoint (`guarded`), an
/// address that is not public gets no media from us: an endpoint that passed the address check
/// must not steer our RTP into the operator's network afterwards.
fn guarded_media(n: &Negotiated, guarded: bool) -> Option<RemoteMedia> {
    remote_media(n).map(|mut m| {
        if guarded && !is_public(m.addr.ip()) {
            m.send = false;
        }
        m
    })
}

fn remote_media(n: &Negotiated) -> Option<RemoteMedia> {
    let ip = n.remote_connection.as_ref().and_then(Connection::ip)?;
    Some(RemoteMedia {
        addr: SocketAddr::new(ip, n.remote_port),
        payload_type: n.payload_type,
        telephone_event_pt: n.telephone_event_pt,
        send: n.direction.sends() && !n.remote_hold && n.remote_port != 0,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Invite,
    Cancel,
    Bye,
    /// A re-INVITE we sent to refresh the session.
    Refresh,
    Register,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Out,
    In,
}

struct MediaCtl {
    remote: watch::Sender<Option<RemoteMedia>>,
    dtmf: mpsc::Sender<char>,
    local: LocalMedia,
    negotiated: Option<Negotiated>,
    /// Bumped when our description changes (RFC 3264 §8).
    version: u64,
    /// The description we last sent: re-sent identical (same version) when nothing changed.
    last_sdp: Option<Vec<u8>>,
    /// Our offer went in a 2xx (a re-INVITE without SDP): the answer comes in the ACK.
    awaiting_answer: bool,
}

/// Builds our next description with the current version, bumping the version when it differs
/// from the one last sent (RFC 3264 §8: same version, same bytes).
fn stamp_sdp(media: &mut MediaCtl, build: impl Fn(&LocalMedia) -> Option<Vec<u8>>) -> Option<Vec<u8>> {
    let mut local = media.local.clone();
    local.origin.session_version = media.version.to_string();
    let mut body = build(&local)?;
    if media.last_sdp.as_ref().is_some_and(|last| *last != body) {
        media.version += 1;
        local.origin.session_version = media.version.to_string();
        body = build(&local)?;
    }
    media.last_sdp = Some(body.clone());
    Some(body)
}

/// One call's dialog and the handles of its leg.
struct Call {
    /// Where the dialog stands, its CANCEL/BYE intents and its deadlines.
    dialog: Dialog,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our From (outbound) or To (inbound) address, without tag.
    local_uri: NameAddr,
    remote_uri: NameAddr,
    remote_target: Option<Uri>,
    route_set: Vec<NameAddr>,
    cseq: u32,
    /// Where requests in this dialog go.
    peer: Peer,
    /// The dialog runs over the trunk (the only peer our credentials are for).
    to_trunk: bool,
    events: mpsc::Sender<LegEvent>,
    media: MediaCtl,
    /// Outbound: the INVITE as last sent (for CANCEL and ACK), and its transaction.
    invite: Option<(TxKey, Message)>,
    /// Outbound: the ACK sent for the 2xx, re-sent when the 2xx is retransmitted.
    ack: Option<Bytes>,
    /// Our INVITE was retried once with credentials (RFC 3261 §22.2); a second challenge ends it.
    auth_tried: bool,
    /// Inbound: the INVITE being answered, and its transaction.
    offer: Option<(TxKey, Message)>,
    /// The highest CSeq the far end used in this dialog (§12.2.2: lower ones are out of order).
    remote_cseq: Option<u32>,
}

#[derive(Default)]
struct Registration {
    key: Option<TxKey>,
    call_id: String,
    tag: String,
    cseq: u32,
    auth_tried: bool,
    next_at: Option<Instant>,
}

struct Core {
    settings: SipSettings,
    tx: TxLayer,
    /// Bytes to send, drained to the transport by the run loop (tests read it instead).
    outbox: Vec<(Peer, Bytes)>,
    /// The IP the transports listen on; RTP sockets bind there too.
    listen_ip: IpAddr,
    trunk: Peer,
    carrier: Carrier,
    public: SocketAddr,
    calls: HashMap<u64, Call>,
    by_call_id: HashMap<String, u64>,
    by_tx: HashMap<TxKey, (u64, Purpose)>,
    next_id: u64,
    incoming: mpsc::Sender<IncomingCall>,
    owned: Owned,
    commands: mpsc::Sender<Command>,
    rtp_cursor: u32,
    link: watch::Sender<LinkState>,
    registration: Registration,
    /// Each call's RTP session and leg-command relay. A media task ends when its call leaves
    /// `calls` (its `remote` watch closes), a relay when its leg is dropped or the core stops
    /// taking commands; [`Core::end_calls`] joins what is left at shutdown.
    call_tasks: TaskSet,
}

/// The id under which registration transactions are filed in `by_tx`.
const REGISTRATION: u64 = 0;
/// The id of BYEs for dialogs we never kept (stray or forked 2xx).
const STRAY: u64 = u64::MAX;

impl Core {
    async fn run(
        mut self,
        transport: Arc<SipTransport>,
        mut inbound: mpsc::Receiver<Inbound>,
        mut commands: mpsc::Receiver<Command>,
        mut stop: watch::Receiver<bool>,
    ) {
        if self.settings.register {
            self.registration.call_id = format!("{}@{}", token(), self.public.ip());
            self.registration.tag = token();
            self.register(Instant::now());
        }
        loop {
            self.flush();
            for (to, bytes) in self.outbox.drain(..) {
                transport.send(to, bytes);
            }
            let deadline = self.next_deadline();
            tokio::select! {
                // Input first: under load, a response already waiting must be seen before the
                // timer that would retransmit its request fires.
                biased;
                message = inbound.recv() => match message {
                    Some(first) => {
                        // Take what else is queued in the same turn (bounded), then timers.
                        let mut next = Some(first);
                        let mut taken = 0;
                        while let Some(Inbound { message, from }) = next {
                            if self.screen(&message, from) {
                                self.tx.on_message(message, from, Instant::now().into_std());
                            }
                            self.flush();
                            taken += 1;
                            next = if taken < INBOUND_BATCH { inbound.try_recv().ok() } else { None };
                        }
                        // Input first, but not input only: with `biased` a steady stream (or a
                        // flood of strangers) would otherwise never let a timer, a command or
                        // the stop signal through.
                        let now = Instant::now();
                        if self.next_deadline().is_some_and(|d| now >= d) {
                            self.on_timers(now);
                        }
                        for _ in 0..INBOUND_BATCH {
                            let Ok(command) = commands.try_recv() else { break };
                            self.on_command(command);
                        }
                        if stop.has_changed().unwrap_or(true) {
                            break;
                        }
                    }
                    None => break,
                },
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                _ = sleep_until(deadline) => self.on_timers(Instant::now()),
                _ = stop.changed() => break,
            }
        }
        // Shutting down: hang up every call, unregister, and give the messages a moment to leave.
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for id in ids {
            self.hangup(id, HangupCause::Failed, Some(503));
        }
        if self.settings.register && matches!(*self.link.borrow(), LinkState::Up) {
            self.send_register(Instant::now(), 0);
        }
        self.flush();
        for (to, bytes) in self.outbox.drain(..) {
            transport.send(to, bytes);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // No more commands: the relays see their channel close and end.
        drop(commands);
        self.end_calls().await;
        transport.close().await;
    }

    /// Forgets every call, which ends its media task (its `remote` watch closes), and joins the
    /// calls' tasks; those still running after [`CALL_TASKS_DRAIN`] are aborted. The command
    /// receiver must be gone first, or relays whose legs are still held would wait for it.
    async fn end_calls(&mut self) {
        self.calls.clear();
        self.by_call_id.clear();
        self.call_tasks.join_within(CALL_TASKS_DRAIN).await;
    }

    /// Requests that would only cost us state are answered statelessly here, before the
    /// transaction layer: a new INVITE (or any out-of-dialog request but OPTIONS) from outside
    /// the carrier gets 403, a request for a dialog we do not have gets 481, a stray ACK is
    /// dropped. Nothing is retransmitted for them and no transaction is held. Returns whether
    /// the message goes on.
    fn screen(&mut self, message: &Message, from: Peer) -> bool {
        let Some(method) = message.method() else { return true };
        let in_dialog = message.to().ok().is_some_and(|t| t.tag().is_some());
        let known = message.call_id().ok().is_some_and(|c| self.by_call_id.contains_key(c));
        let from_carrier = self.carrier.contains(from.addr.ip());
        let refusal = match (method, in_dialog) {
            (Method::Ack, _) => return known || from_carrier,
            (Method::Cancel, _) if !from_carrier && !known => Some((481, "Call/Transaction Does Not Exist")),
            (Method::Options, false) => {
                if let Some(ok) = options_ok(message, Some(&token())) {
                    self.tx.send_stateless(&ok, from);
                }
                return false;
            }
            (_, false) if !from_carrier => Some((403, "Forbidden")),
            (Method::Invite | Method::Bye | Method::Update | Method::Info, true) if !known => {
                Some((481, "Call/Transaction Does Not Exist"))
            }
            _ => None,
        };
        match refusal {
            Some((code, reason)) => {
                if let Ok(response) = Message::response(message, code, reason, Some(&token())) {
                    self.tx.send_stateless(&response, from);
                }
                false
            }
            None => true,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.tx.next_deadline().map(Instant::from_std);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.registration.next_at);
        for call in self.calls.values() {
            consider(call.dialog.next_deadline().map(Instant::from_std));
        }
        next
    }

    /// Sends what the transaction layer queued and handles its events.
    fn flush(&mut self) {
        while let Some(output) = self.tx.poll_output() {
            match output {
                Output::Send { to, bytes } => self.outbox.push((to, bytes)),
                Output::Event(event) => self.on_event(event),
            }
        }
    }

    fn on_timers(&mut self, now: Instant) {
        self.tx.on_timeout(now.into_std());
        if self.registration.next_at.is_some_and(|t| t <= now) {
            self.registration.next_at = None;
            self.registration.auth_tried = false;
            self.register(now);
        }
        let due: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, c)| c.dialog.next_deadline().is_some_and(|t| t <= now.into_std()))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(call) = self.calls.get_mut(&id) else { continue };
            let action = call.dialog.on_event(Event::Tick { now: now.into_std() });
            if let Some(Action::GiveUp { cause, .. }) = action {
                let why = if cause == HangupCause::NoAnswer {
                    "no final answer in time; cancelling"
                } else {
                    "session expired without a refresh (RFC 4028)"
                };
                tracing::info!(call_id = %call.call_id, "{why}");
            }
            self.perform(id, action, now);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Dial { from, to, reply } => {
                let result = self.dial(from, to, Instant::now());
                let _ = reply.send(result);
            }
            Command::DialUri { from, uri, peer, reply } => {
                let to = NameAddr::new(uri.clone());
                let result = self.dial_target(from, uri, to, peer, false, Instant::now());
                let _ = reply.send(result);
            }
            Command::Leg { call, command } => self.on_leg(call, command),
        }
    }

    fn tell(&self, id: u64, event: LegEvent) {
        if let Some(call) = self.calls.get(&id)
            && call.events.try_send(event).is_err()
        {
            tracing::debug!(call_id = %call.call_id, "leg event dropped: the call's queue is full or closed");
        }
    }

    // ----- building messages -------------------------------------------------------------

    fn via(&self, peer: Peer) -> Via {
        let transport = match peer.transport {
            Kind::Udp => "UDP",
            Kind::Tcp => "TCP",
        };
        Via::new(transport, &self.public.ip().to_string(), Some(self.public.port()), &branch()).with_rport()
    }

    fn contact(&self, user: &str, peer: Peer) -> NameAddr {
        let mut uri = Uri::sip(Some(user), &host_of(self.public.ip())).with_port(self.public.port());
        if peer.transport == Kind::Tcp {
            uri = uri.with_param("transport", Some("tcp"));
        }
        NameAddr::new(uri)
    }

    fn trunk_uri(&self, user: Option<&str>) -> Uri {
        let mut uri = Uri::sip(user, &self.settings.trunk_host).with_port(self.settings.trunk_port);
        if self.settings.tcp {
            uri = uri.with_param("transport", Some("tcp"));
        }
        uri
    }

    fn local_media(&mut self, socket_port: u16) -> LocalMedia {
        LocalMedia {
            origin: Origin {
                username: "agentline".to_owned(),
                session_id: (rand::random::<u32>() >> 1).to_string(),
                session_version: "1".to_owned(),
                addr_type: Connection::new(self.public.ip()).addr_type,
                address: self.public.ip().to_string(),
            },
            session_name: "agentline".to_owned(),
            connection: Connection::new(self.public.ip()),
            port: socket_port,
            codecs: self.settings.codecs.clone(),
            telephone_event_pt: Some(sdp::DEFAULT_TELEPHONE_EVENT_PT),
            ptime_ms: 20,
            direction: sdp::Direction::SendRecv,
        }
    }

    /// A request inside the dialog of `call` (§12.2.1.1), CSeq bumped.
    fn in_dialog(&mut self, id: u64, method: Method) -> Option<Message> {
        let public = self.public;
        let call = self.calls.get_mut(&id)?;
        call.cseq += 1;
        let mut to = call.remote_uri.clone();
        if let Some(tag) = &call.remote_tag {
            to = to.with_tag(tag);
        }
        let uri = call.remote_target.clone().unwrap_or_else(|| call.remote_uri.uri.clone());
        let transport = if call.peer.transport == Kind::Tcp { "TCP" } else { "UDP" };
        let head = RequestHead {
            uri,
            via: Via::new(transport, &public.ip().to_string(), Some(public.port()), &branch()).with_rport(),
            from: call.local_uri.clone().with_tag(&call.local_tag),
            to,
            call_id: call.call_id.clone(),
            cseq: call.cseq,
            max_forwards: 70,
            route: call.route_set.clone(),
            contact: None,
        };
        let mut message = Message::request(method, &head).ok()?;
        let _ = message.headers_mut().push("User-Agent", USER_AGENT);
        Some(message)
    }

    fn respond(&mut self, request: &Message, code: u16, reason: &str, to_tag: Option<&str>) {
        // A final response outside a dialog still carries a To tag (§8.2.6.2).
        let fresh = (code > 100 && to_tag.is_none()).then(token);
        match Message::response(request, code, reason, to_tag.or(fresh.as_deref())) {
            Ok(mut response) => {
                let _ = response.headers_mut().push("Server", USER_AGENT);
                if code == 405 {
                    let _ = response.headers_mut().push("Allow", ALLOW);
                }
                self.send_response(response);
            }
            Err(err) => tracing::debug!(error = %err, "cannot build a response"),
        }
    }

    fn send_response(&mut self, response: Message) {
        if let Err(err) = self.tx.send_response(response, std::time::Instant::now()) {
            tracing::debug!(error = ?err, "response not sent");
        }
    }

    fn send_request(&mut self, id: u64, purpose: Purpose, request: Message, to: Peer) -> Option<TxKey> {
        match self.tx.send_request(request, to, std::time::Instant::now()) {
            Ok(key) => {
                self.by_tx.insert(key.clone(), (id, purpose));
                Some(key)
            }
            Err(err) => {
                tracing::warn!(error = ?err, "request not sent");
                None
            }
        }
    }

    // ----- outbound ----------------------------------------------------------------------

    fn dial(&mut self, from: E164, to: E164, now: Instant) -> Result<Leg, DialError> {
        let uri = self.trunk_uri(Some(to.as_str()));
        let trunk = self.trunk;
        self.dial_target(from, uri.clone(), NameAddr::new(uri), trunk, true, now)
    }

    /// Sends an INVITE to `uri` at `peer`: through the trunk, or straight to an agent's endpoint.
    fn dial_target(
        &mut self,
        from: E164,
        uri: Uri,
        remote_uri: NameAddr,
        peer: Peer,
        to_trunk: bool,
        now: Instant,
    ) -> Result<Leg, DialError> {
        if !matches!(*self.link.borrow(), LinkState::Up) || self.calls.len() >= MAX_CALLS {
            return Err(DialError::Unavailable);
        }
        let socket = self.bind_rtp()?;
        let port = socket.local_addr().map_err(|_| DialError::Unavailable)?.port();
        let local = self.local_media(port);
        let offer = sdp::offer(&local).map_err(|_| DialError::Unavailable)?;
        let call_id = format!("{}@{}", token(), self.public.ip());
        let local_tag = token();
        let local_uri = NameAddr::new(Uri::sip(Some(from.as_str()), &host_of(self.public.ip())));
        let head = RequestHead {
            uri,
            via: self.via(peer),
            from: local_uri.clone().with_tag(&local_tag),
            to: remote_uri.clone(),
            call_id: call_id.clone(),
            cseq: 1,
            max_forwards: 70,
            route: Vec::new(),
            contact: Some(self.contact(from.as_str(), peer)),
        };
        let mut invite = Message::invite(&head, Some(offer.to_bytes())).map_err(|_| DialError::Unavailable)?;
        self.decorate_invite(&mut invite);
        let id = self.next_id;
        self.next_id += 1;
        let (leg, mut ctl) = self.leg(id, socket, local, None, Codec::Pcmu);
        ctl.1.last_sdp = Some(invite.body().to_vec());
        let Some(key) = self.send_request(id, Purpose::Invite, invite.clone(), peer) else {
            return Err(DialError::Unavailable);
        };
        self.by_call_id.insert(call_id.clone(), id);
        self.calls.insert(
            id,
            Call {
                dialog: Dialog::outgoing(now.into_std(), self.settings.invite_timeout),
                call_id,
                local_tag,
                remote_tag: None,
                local_uri,
                remote_uri,
                remote_target: None,
                route_set: Vec::new(),
                cseq: 1,
                peer,
                to_trunk,
                events: ctl.0,
                media: ctl.1,
                invite: Some((key, invite)),
                ack: None,
                auth_tried: false,
                offer: None,
                remote_cseq: None,
            },
        );
        Ok(leg)
    }

    fn decorate_invite(&self, invite: &mut Message) {
        let headers = invite.headers_mut();
        let _ = headers.push("Allow", ALLOW);
        let _ = headers.push("User-Agent", USER_AGENT);
        if !self.settings.session_expires.is_zero() {
            let _ = headers.push("Supported", "timer");
            let _ = headers.push("Session-Expires", &self.settings.session_expires.as_secs().to_string());
            let _ = headers.push("Min-SE", &MIN_SE_SECS.to_string());
        }
    }

    fn bind_rtp(&mut self) -> Result<tokio::net::UdpSocket, DialError> {
        let bind_ip = self.listen_ip;
        let (low, high) = self.settings.rtp_ports;
        self.rtp_cursor = self.rtp_cursor.wrapping_add(1);
        media::bind_in_range(bind_ip, low, high, self.rtp_cursor).map_err(|err| {
            tracing::warn!(error = %err, "no RTP port for a call");
            DialError::Unavailable
        })
    }

    /// The leg handed to the voice service, its media task and command forwarder.
    fn leg(
        &self,
        id: u64,
        socket: tokio::net::UdpSocket,
        local: LocalMedia,
        remote: Option<RemoteMedia>,
        codec: Codec,
    ) -> (Leg, (mpsc::Sender<LegEvent>, MediaCtl)) {
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (commands, mut commands_rx) = mpsc::channel::<LegCommand>(EVENT_QUEUE);
        let (to_call, media_in) = mpsc::channel(MEDIA_QUEUE);
        let (media_out, from_call) = mpsc::channel(MEDIA_QUEUE);
        let (remote_tx, remote_rx) = watch::channel(remote);
        let (dtmf_tx, dtmf_rx) = mpsc::channel(media::DTMF_QUEUE);
        let channels =
            MediaChannels { to_call, from_call, events: events_tx.clone(), remote: remote_rx, dtmf: dtmf_rx };
        // Refused only once the core has stopped: the futures are dropped, which closes the
        // socket and the leg's channels, so the leg sees its call end.
        let media = self.call_tasks.spawn(async move {
            media::run(socket, channels).await;
        });
        let core = self.commands.clone();
        let relay = self.call_tasks.spawn(async move {
            loop {
                let command = tokio::select! {
                    command = commands_rx.recv() => command,
                    // The core stopped taking commands (shutdown): nothing left to relay to.
                    () = core.closed() => return,
                };
                let done = command.is_none();
                if core.send(Command::Leg { call: id, command }).await.is_err() || done {
                    return;
                }
            }
        });
        if media.and(relay).is_err() {
            tracing::debug!(call = id, "call tasks refused: the SIP core is stopping");
        }
        let leg = Leg { codec, events, commands, media_in, media_out, jitter_frames: self.settings.jitter_frames };
        let ctl = MediaCtl {
            remote: remote_tx,
            dtmf: dtmf_tx,
            local,
            negotiated: None,
            version: 1,
            last_sdp: None,
            awaiting_answer: false,
        };
        (leg, (events_tx, ctl))
    }

    fn on_leg(&mut self, id: u64, command: Option<LegCommand>) {
        let Some(call) = self.calls.get(&id) else { return };
        let offered = call.dialog.is_offered();
        match command {
            Some(LegCommand::SendDtmf(digit)) => {
                let _ = call.media.dtmf.try_send(digit);
            }
            Some(LegCommand::Ring) if offered => self.answer_offer(id, 180),
            Some(LegCommand::Answer) if offered => self.answer_offer(id, 200),
            Some(LegCommand::Reject(refusal)) if offered => {
                let code = match refusal {
                    Refusal::Busy => 486,
                    Refusal::NotFound => 404,
                    Refusal::NoAnswer => 480,
                };
                self.answer_offer(id, code);
            }
            Some(LegCommand::Ring | LegCommand::Answer | LegCommand::Reject(_)) => {}
            Some(LegCommand::Hangup) | None => self.hangup(id, HangupCause::Normal, None),
        }
    }

    /// Ends a call from our side, whatever its phase: CANCEL, BYE, or a final refusal.
    /// (The dialog holds back a CANCEL until a provisional, §9.1, and a callee's BYE until the
    /// ACK, §15.)
    fn hangup(&mut self, id: u64, _cause: HangupCause, refuse_with: Option<u16>) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        match call.dialog.on_event(Event::Hangup) {
            Some(Action::RefuseOffer) => self.answer_offer(id, refuse_with.unwrap_or(480)),
            action => self.perform(id, action, Instant::now()),
        }
    }

    /// Does what the dialog asked for.
    fn perform(&mut self, id: u64, action: Option<Action>, now: Instant) {
        match action {
            None | Some(Action::Progress | Action::Answered) => {}
            Some(Action::SendCancel) => self.send_cancel(id),
            Some(Action::SendBye) => self.send_bye(id),
            Some(Action::RefuseOffer) => self.answer_offer(id, 480),
            Some(Action::End { cause, sip_code }) => {
                self.tell(id, LegEvent::Hangup { cause, sip_code });
                self.remove(id);
            }
            Some(Action::EndWithBye { cause, sip_code }) => {
                self.tell(id, LegEvent::Hangup { cause, sip_code });
                self.send_bye(id);
            }
            Some(Action::GiveUp { cause, sip_code }) => {
                self.tell(id, LegEvent::Hangup { cause, sip_code });
                self.hangup(id, cause, None);
            }
            Some(Action::Refresh) => self.refresh(id, now),
        }
    }

    /// BYE in the dialog, to the remote target, and the call is gone.
    fn send_bye(&mut self, id: u64) {
        let Some(call) = self.calls.get(&id) else { return };
        let peer = self.target_peer(call);
        if let Some(bye) = self.in_dialog(id, Method::Bye) {
            self.send_request(id, Purpose::Bye, bye, peer);
        }
        self.remove(id);
    }

    fn send_cancel(&mut self, id: u64) {
        let Some(call) = self.calls.get(&id) else { return };
        let Some((_, invite)) = &call.invite else { return };
        let peer = call.peer;
        match Message::cancel(invite) {
            Ok(cancel) => {
                self.send_request(id, Purpose::Cancel, cancel, peer);
            }
            Err(err) => tracing::debug!(error = %err, "cannot build CANCEL"),
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(call) = self.calls.remove(&id) {
            self.by_call_id.remove(&call.call_id);
            // Its transactions' answers go nowhere now (a late 2xx is ACKed and BYEd as stray).
            self.by_tx.retain(|_, (owner, _)| *owner != id);
        }
    }

    fn on_event(&mut self, event: TxEvent) {
        match event {
            TxEvent::Request { key, request, from } => self.on_request(key, request, from),
            TxEvent::Ack { request, .. } => self.on_ack(request),
            TxEvent::CancelFor { invite, .. } => self.on_cancelled(invite),
            TxEvent::Response { key, response, peer } => self.on_response(key, response, peer),
            TxEvent::Timeout { key } => self.on_tx_timeout(key),
            TxEvent::StrayResponse { response, from } => self.on_stray(response, from),
        }
    }

    /// `peer`: where the request went (the trunk, or an agent's own endpoint).
    fn on_response(&mut self, key: TxKey, response: Message, peer: Peer) {
        let Some(code) = response.status_code() else { return };
        let Some(&(id, purpose)) = self.by_tx.get(&key) else {
            // A 2xx for a call that is gone (it crossed our hang-up): ACK it, then BYE, towards
            // the peer the INVITE went to.
            if (200..300).contains(&code) && matches!(response.cseq(), Ok((_, Method::Invite))) {
                self.ack_and_bye(&response, peer);
            }
            return;
        };
        let invite_2xx = matches!(purpose, Purpose::Invite | Purpose::Refresh) && (200..300).contains(&code);
        // An INVITE's 2xx stays filed: its retransmissions must be ACKed again (until the call ends).
        if code >= 200 && !invite_2xx {
            self.by_tx.remove(&key);
        }
        match purpose {
            Purpose::Register => self.on_register_response(code, &response),
            Purpose::Invite => self.on_invite_response(id, code, &response),
            Purpose::Refresh => self.on_refresh_response(id, code, &response),
            Purpose::Cancel | Purpose::Bye => {}
        }
    }

    /// The answer to our session-refresh re-INVITE.
    fn on_refresh_response(&mut self, id: u64, code: u16, response: &Message) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if (200..300).contains(&code) {
            if let Some(ack) = call.ack.clone() {
                // A retransmission: our ACK was lost.
                let to = self.ack_destination(id);
                self.outbox.push((to, ack));
                return;
            }
            call.dialog.on_event(Event::RefreshAnswered { code, now: Instant::now().into_std() });
            if response.has_sdp() {
                self.take_answer(id, response);
            }
            self.ack_2xx(id, response);
            self.arm_session_timer(id, response, Dir::Out);
        } else if code >= 300 {
            // 408/481: the dialog is gone at the far end; 491 (glare) and transient failures
            // are retried shortly, the session still up.
            let action = call.dialog.on_event(Event::RefreshAnswered { code, now: Instant::now().into_std() });
            self.perform(id, action, Instant::now());
        }
    }

    /// ACKs a 2xx that belongs to no dialog of ours (a fork we did not take, or a call already
    /// gone), then ends that dialog with BYE (RFC 3261 §13.2.2.4).
    fn ack_and_bye(&mut self, response: &Message, fallback: Peer) {
        let (Ok((number, _)), Ok(call_id), Ok(from), Ok(to)) =
            (response.cseq(), response.call_id(), response.from(), response.to())
        else {
            return;
        };
        let Some(contact) = response.contact().ok().and_then(|c| c.into_iter().next()) else { return };
        let route: Vec<NameAddr> = response.record_route().unwrap_or_default().into_iter().rev().collect();
        let first_hop = route.first().map(|r| &r.uri).unwrap_or(&contact.uri);
        let host = first_hop.host.trim_start_matches('[').trim_end_matches(']');
        let peer = match host.parse::<IpAddr>() {
            Ok(ip) if self.carrier.contains(ip) => {
                Peer { addr: SocketAddr::new(ip, first_hop.port.unwrap_or(5060)), transport: fallback.transport }
            }
            _ => fallback,
        };
        let call_id = call_id.to_owned();
        for (method, cseq) in [(Method::Ack, number), (Method::Bye, number.saturating_add(1))] {
            let head = RequestHead {
                uri: contact.uri.clone(),
                via: self.via(peer),
                from: from.clone(),
                to: to.clone(),
                call_id: call_id.clone(),
                cseq,
                max_forwards: 70,
                route: route.clone(),
                contact: None,
            };
            let Ok(request) = Message::request(method.clone(), &head) else { return };
            if method == Method::Ack {
                self.outbox.push((peer, Bytes::from(request.to_bytes())));
            } else {
                self.send_request(STRAY, Purpose::Bye, request, peer);
            }
        }
    }

    fn on_invite_response(&mut self, id: u64, code: u16, response: &Message) {
        // A call's transactions leave `by_tx` with it (`remove`): a late 2xx for a call that is
        // gone is ACKed and BYEd in `on_response`, not here.
        let Some(call) = self.calls.get_mut(&id) else { return };
        if code < 200 {
            // Any provisional, 100 included, allows a CANCEL (§9.1).
            if code != 100
                && let Some(tag) = response.to().ok().and_then(|t| t.tag().map(str::to_owned))
            {
                call.remote_tag = Some(tag);
            }
            match call.dialog.on_event(Event::Provisional { code }) {
                Some(Action::Progress) => {
                    let early_media = response.has_sdp() && self.take_answer(id, response);
                    let Some(call) = self.calls.get_mut(&id) else { return };
                    if early_media {
                        self.tell(id, LegEvent::EarlyMedia);
                    } else if call.dialog.take_ringing() {
                        self.tell(id, LegEvent::Ringing);
                    }
                }
                action => self.perform(id, action, Instant::now()),
            }
            return;
        }
        if (200..300).contains(&code) {
            let tag = response.to().ok().and_then(|t| t.tag().map(str::to_owned));
            if let Some(ack) = call.ack.clone() {
                if tag == call.remote_tag {
                    // A retransmitted 2xx: our ACK was lost.
                    let to = self.ack_destination(id);
                    self.outbox.push((to, ack));
                } else {
                    // Another fork answered too: ACK and release it; our dialog stays as it is.
                    let peer = call.peer;
                    self.ack_and_bye(response, peer);
                }
                return;
            }
            call.remote_tag = tag;
            call.remote_target = response.contact().ok().and_then(|c| c.into_iter().next()).map(|c| c.uri);
            call.route_set = response.record_route().unwrap_or_default().into_iter().rev().collect();
            if response.has_sdp() {
                self.take_answer(id, response);
            }
            self.ack_2xx(id, response);
            let Some(call) = self.calls.get_mut(&id) else { return };
            // A 200 that crossed our CANCEL (§15) is acknowledged, then the call ends with BYE.
            match call.dialog.on_event(Event::Success) {
                Some(Action::Answered) => {
                    self.arm_session_timer(id, response, Dir::Out);
                    self.tell(id, LegEvent::Answered);
                }
                action => self.perform(id, action, Instant::now()),
            }
            return;
        }
        // 3xx-6xx: the transaction layer sent the ACK.
        if matches!(code, 401 | 407) && !call.auth_tried && call.to_trunk && !self.settings.user.is_empty() {
            call.auth_tried = true;
            if self.retry_with_credentials(id, code, response) {
                return;
            }
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        let action = call.dialog.on_event(Event::Failure { code });
        self.perform(id, action, Instant::now());
    }

    /// Reads the far end's SDP answer (in a 183 or the 2xx) and points the media at it.
    fn take_answer(&mut self, id: u64, response: &Message) -> bool {
        let Some(call) = self.calls.get_mut(&id) else { return false };
        let negotiated = SessionDescription::parse(response.body())
            .ok()
            .and_then(|sd| sdp::accept_answer(&sd, &call.media.local).ok());
        let Some(negotiated) = negotiated else {
            tracing::info!(call_id = %call.call_id, "the far end's SDP answer is unusable");
            return false;
        };
        let codec = negotiated.codec;
        let changed = call.media.negotiated.as_ref().is_none_or(|n| n.codec != codec);
        let guarded = !call.to_trunk && !self.settings.allow_private_endpoints;
        let _ = call.media.remote.send(guarded_media(&negotiated, guarded));
        call.media.negotiated = Some(negotiated);
        if changed && codec != Codec::Pcmu {
            self.tell(id, LegEvent::CodecChanged(codec));
        }
        true
    }

    fn ack_destination(&self, id: u64) -> Peer {
        let Some(call) = self.calls.get(&id) else { return self.trunk };
        self.target_peer(call)
    }

    /// Where in-dialog requests go: the route set's first hop or the remote target when it is
    /// an IP literal, else the peer the dialog was set up with.
    fn target_peer(&self, call: &Call) -> Peer {
        let uri = call.route_set.first().map(|r| &r.uri).or(call.remote_target.as_ref());
        let Some(uri) = uri else { return call.peer };
        let host = uri.host.trim_start_matches('[').trim_end_matches(']');
        match host.parse::<IpAddr>() {
            // An agent's endpoint may not redirect our requests into the operator's network.
            Ok(ip) if !may_target(ip, call.to_trunk, self.settings.allow_private_endpoints) => call.peer,
            Ok(ip) => {
                let tcp = uri.transport().is_some_and(|t| t.eq_ignore_ascii_case("tcp"));
                let transport = if tcp || call.peer.transport == Kind::Tcp { Kind::Tcp } else { Kind::Udp };
                Peer { addr: SocketAddr::new(ip, uri.port.unwrap_or(5060)), transport }
            }
            Err(_) => call.peer,
        }
    }

    fn ack_2xx(&mut self, id: u64, response: &Message) {
        let Some(call) = self.calls.get(&id) else { return };
        let Some((_, invite)) = &call.invite else { return };
        let peer = self.target_peer(call);
        let via = self.via(peer);
        match Message::ack_2xx(invite, response, &via, None) {
            Ok(ack) => {
                let bytes = Bytes::from(ack.to_bytes());
                self.outbox.push((peer, bytes.clone()));
                if let Some(call) = self.calls.get_mut(&id) {
                    call.ack = Some(bytes);
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot build the ACK for a 2xx"),
        }
    }

    fn retry_with_credentials(&mut self, id: u64, code: u16, response: &Message) -> bool {
        let Some(kind) = AuthKind::for_status(code) else { return false };
        let Some(call) = self.calls.get_mut(&id) else { return false };
        let Some((_, invite)) = &call.invite else { return false };
        let Some(challenge) = response.challenges(kind).ok().and_then(|c| c.into_iter().next()) else {
            return false;
        };
        let mut retry = invite.clone();
        let Some(uri) = retry.request_uri().map(ToString::to_string) else { return false };
        let request = DigestRequest { method: "INVITE", uri: &uri, body: retry.body() };
        let Ok(credentials) = challenge.respond(&self.settings.user, &self.settings.password, &request, &token(), 1)
        else {
            return false;
        };
        call.cseq += 1;
        let cseq = call.cseq;
        let peer = call.peer;
        let headers = retry.headers_mut();
        let _ = headers.set("CSeq", &format!("{cseq} INVITE"));
        let _ = headers.set(kind.credentials_header(), &credentials.to_string());
        // A new transaction: a new branch in our Via.
        let via = self.via(peer);
        let _ = retry.headers_mut().set("Via", &via.to_string());
        let Some(key) = self.send_request(id, Purpose::Invite, retry.clone(), peer) else { return false };
        if let Some(call) = self.calls.get_mut(&id) {
            call.invite = Some((key, retry));
        }
        true
    }

    fn on_tx_timeout(&mut self, key: TxKey) {
        let Some((id, purpose)) = self.by_tx.remove(&key) else {
            self.on_server_timeout(&key);
            return;
        };
        match purpose {
            Purpose::Invite => {
                if let Some(call) = self.calls.get_mut(&id)
                    && call.invite.as_ref().is_some_and(|(k, _)| *k == key)
                {
                    let action = call.dialog.on_event(Event::InviteTimeout);
                    self.perform(id, action, Instant::now());
                }
            }
            Purpose::Refresh => {
                self.tell(id, LegEvent::Hangup { cause: HangupCause::Failed, sip_code: Some(408) });
                self.hangup(id, HangupCause::Failed, None);
            }
            Purpose::Register => self.registration_failed("the registrar did not answer"),
            Purpose::Cancel | Purpose::Bye => {}
        }
    }

    /// An INVITE we were answering timed out: no ACK for our 2xx (BYE it, §13.3.1.4), or no
    /// final answer within the transaction's life (the caller has given up).
    fn on_server_timeout(&mut self, key: &TxKey) {
        let id = self.calls.iter().find(|(_, c)| c.offer.as_ref().is_some_and(|(k, _)| k == key)).map(|(id, _)| *id);
        let Some(id) = id else { return };
        let Some(call) = self.calls.get_mut(&id) else { return };
        let action = call.dialog.on_event(Event::ServerTimeout);
        if matches!(action, Some(Action::EndWithBye { .. })) {
            tracing::info!(call_id = %call.call_id, "no ACK for our 2xx; ending the call");
        }
        self.perform(id, action, Instant::now());
    }

    /// A response no transaction wanted: a 2xx retransmitted after the INVITE transaction
    /// ended. Its ACK is re-sent; a 2xx for a call we no longer have gets ACK and BYE.
    fn on_stray(&mut self, response: Message, from: Peer) {
        let Some(code) = response.status_code() else { return };
        if !(200..300).contains(&code) || !matches!(response.cseq(), Ok((_, Method::Invite))) {
            return;
        }
        let Ok(call_id) = response.call_id() else { return };
        match self.by_call_id.get(call_id).copied() {
            Some(id) => {
                let tag = response.to().ok().and_then(|t| t.tag().map(str::to_owned));
                let Some(call) = self.calls.get(&id) else { return };
                match call.ack.clone() {
                    Some(ack) if tag == call.remote_tag => {
                        let to = self.ack_destination(id);
                        self.outbox.push((to, ack));
                    }
                    _ => {
                        let peer = call.peer;
                        self.ack_and_bye(&response, peer);
                    }
                }
            }
            None if self.carrier.contains(from.addr.ip()) => self.ack_and_bye(&response, from),
            None => {}
        }
    }

    // ----- session timers (RFC 4028) -----------------------------------------------------

    /// Arms the session timer from a 2xx (outbound) or from the request we answered (inbound).
    fn arm_session_timer(&mut self, id: u64, message: &Message, dir: Dir) {
        let Ok(Some(se)) = message.session_expires() else { return };
        let Some(call) = self.calls.get_mut(&id) else { return };
        let interval = Duration::from_secs(u64::from(se.delta_secs).max(MIN_SE_SECS));
        // The refresher is named in the 2xx; absent, the UAC refreshes when it is us.
        let we_refresh =
            matches!((se.refresher, dir), (Some(Refresher::Uac) | None, Dir::Out) | (Some(Refresher::Uas), Dir::In));
        // §10: without a refresh, BYE at the interval minus min(32 s, interval / 3).
        call.dialog.arm_session(Instant::now().into_std(), interval, we_refresh);
    }

    /// Sends a session refresh: a re-INVITE with our unchanged description.
    fn refresh(&mut self, id: u64, now: Instant) {
        let Some(call) = self.calls.get(&id) else { return };
        let interval = call.dialog.session_interval().unwrap_or(self.settings.session_expires);
        let peer = self.target_peer(call);
        let contact = self.contact(call.local_uri.uri.user.as_deref().unwrap_or("agentline"), peer);
        // Nothing changed: the description we last sent, byte for byte (same version).
        let body = call.media.last_sdp.clone();
        let Some(mut request) = self.in_dialog(id, Method::Invite) else { return };
        let headers = request.headers_mut();
        let _ = headers.push("Contact", &contact.to_string());
        let _ = headers.push("Supported", "timer");
        let _ = headers.push("Session-Expires", &format!("{};refresher=uac", interval.as_secs()));
        if let Some(body) = body {
            let _ = request.set_body("application/sdp", body);
        }
        // The re-INVITE's ACK is built from it, as for the initial INVITE.
        if let Some(key) = self.send_request(id, Purpose::Refresh, request.clone(), peer)
            && let Some(call) = self.calls.get_mut(&id)
        {
            call.invite = Some((key, request));
            call.ack = None;
            call.dialog.on_event(Event::RefreshSent { now: now.into_std() });
        }
    }

    /// A fresh offer of ours (for a re-INVITE that brought none), versioned against the last
    /// description sent.
    fn current_sdp(&mut self, id: u64) -> Option<Vec<u8>> {
        let call = self.calls.get_mut(&id)?;
        stamp_sdp(&mut call.media, |local| sdp::offer(local).ok().map(|sd| sd.to_bytes()))
    }

    // ----- inbound -----------------------------------------------------------------------

    fn on_request(&mut self, key: TxKey, request: Message, from: Peer) {
        let Some(method) = request.method().cloned() else { return };
        let has_to_tag = request.to().ok().is_some_and(|t| t.tag().is_some());
        let existing = request.call_id().ok().and_then(|c| self.by_call_id.get(c).copied());
        match (method, existing) {
            (Method::Invite, None) if !has_to_tag => self.on_invite(key, request, from),
            (Method::Invite, Some(id)) if has_to_tag => self.on_reinvite(id, key, request),
            (Method::Invite, Some(_)) => {
                // A second INVITE with our Call-ID but no tag: a loop or a fork we do not serve.
                self.respond(&request, 482, "Loop Detected", None);
            }
            (Method::Bye, Some(id)) => {
                self.respond(&request, 200, "OK", None);
                if let Some(call) = self.calls.get_mut(&id) {
                    let action = call.dialog.on_event(Event::RemoteBye);
                    self.perform(id, action, Instant::now());
                }
            }
            (Method::Options, _) => {
                if let Some(ok) = options_ok(&request, None) {
                    self.send_response(ok);
                }
            }
            (Method::Update, Some(id)) => {
                // A session refresh without a new description (an offer in UPDATE is refused).
                if request.has_sdp() {
                    self.respond(&request, 488, "Not Acceptable Here", None);
                } else if let Ok(mut ok) = Message::response(&request, 200, "OK", None) {
                    self.session_timer_answer(id, &request, &mut ok);
                    self.send_response(ok);
                }
            }
            (Method::Info, Some(id)) => self.on_info(id, &request),
            (Method::Bye | Method::Update | Method::Info | Method::Invite, None) => {
                self.respond(&request, 481, "Call/Transaction Does Not Exist", None);
            }
            (Method::Ack | Method::Cancel, _) => {}
            _ => self.respond(&request, 405, "Method Not Allowed", None),
        }
    }

    fn on_invite(&mut self, key: TxKey, request: Message, from: Peer) {
        if !self.carrier.contains(from.addr.ip()) {
            tracing::info!(peer = %from.addr, "INVITE from a source other than the trunk refused");
            self.respond(&request, 403, "Forbidden", None);
            return;
        }
        let number = request
            .request_uri()
            .and_then(|u| u.phone_number().ok())
            .or_else(|| request.to().ok().and_then(|t| t.uri.phone_number().ok()));
        let Some(number) = number.filter(|n| (self.owned)(n)) else {
            self.respond(&request, 404, "Not Found", None);
            return;
        };
        if self.calls.len() >= MAX_CALLS {
            self.respond(&request, 503, "Service Unavailable", None);
            return;
        }
        let unsupported: Vec<&str> =
            request.require().into_iter().filter(|t| !t.eq_ignore_ascii_case("timer")).collect();
        if !unsupported.is_empty() {
            // §8.2.2.3: we do not do 100rel (or anything else the caller requires).
            if let Ok(mut bad) = Message::response(&request, 420, "Bad Extension", Some(&token())) {
                let _ = bad.headers_mut().push("Unsupported", &unsupported.join(", "));
                self.send_response(bad);
            }
            return;
        }
        if let Ok(Some(se)) = request.session_expires()
            && u64::from(se.delta_secs) < MIN_SE_SECS
        {
            if let Ok(mut too_small) = Message::response(&request, 422, "Session Interval Too Small", Some(&token())) {
                let _ = too_small.headers_mut().push("Min-SE", &MIN_SE_SECS.to_string());
                self.send_response(too_small);
            }
            return;
        }
        let Ok(socket) = self.bind_rtp() else {
            self.respond(&request, 503, "Service Unavailable", None);
            return;
        };
        let Ok(port) = socket.local_addr().map(|a| a.port()) else { return };
        let local = self.local_media(port);
        // An offer in the INVITE is answered now; without one (late offer) ours goes in the 200.
        let negotiated = if request.has_sdp() {
            let answer = SessionDescription::parse(request.body()).ok().and_then(|sd| sdp::answer(&sd, &local).ok());
            match answer {
                Some((_, n)) => Some(n),
                None => {
                    self.respond(&request, 488, "Not Acceptable Here", None);
                    return;
                }
            }
        } else {
            None
        };
        let codec = negotiated.as_ref().map_or(Codec::Pcmu, |n| n.codec);
        let remote = negotiated.as_ref().and_then(remote_media);
        let id = self.next_id;
        self.next_id += 1;
        let (leg, (events, mut media_ctl)) = self.leg(id, socket, local, remote, codec);
        media_ctl.negotiated = negotiated;
        let caller = request
            .from()
            .ok()
            .map(|f| f.uri.phone_number().map(E164::into_string).unwrap_or_else(|_| f.uri.user.unwrap_or_default()))
            .unwrap_or_default();
        let offer = IncomingCall { from: caller, to: number.clone(), leg };
        if self.incoming.try_send(offer).is_err() {
            self.respond(&request, 503, "Service Unavailable", None);
            return;
        }
        let call_id = request.call_id().map(str::to_owned).unwrap_or_default();
        let remote_uri =
            request.from().map(|f| NameAddr::new(f.uri)).unwrap_or_else(|_| NameAddr::new(Uri::sip(None, "invalid")));
        let remote_tag = request.from().ok().and_then(|f| f.tag().map(str::to_owned));
        let local_uri =
            request.to().map(|t| NameAddr::new(t.uri)).unwrap_or_else(|_| NameAddr::new(Uri::sip(None, "invalid")));
        let remote_target = request.contact().ok().and_then(|c| c.into_iter().next()).map(|c| c.uri);
        let route_set = request.record_route().unwrap_or_default();
        self.by_call_id.insert(call_id.clone(), id);
        self.calls.insert(
            id,
            Call {
                dialog: Dialog::incoming(),
                call_id,
                local_tag: token(),
                remote_tag,
                local_uri,
                remote_uri,
                remote_target,
                route_set,
                cseq: rand::random::<u16>().into(),
                peer: from,
                to_trunk: true,
                events,
                media: media_ctl,
                invite: None,
                ack: None,
                auth_tried: false,
                remote_cseq: request.cseq().ok().map(|(n, _)| n),
                offer: Some((key, request)),
            },
        );
    }

    /// Answers the INVITE being offered: 180, 200 with our SDP, or a refusal.
    fn answer_offer(&mut self, id: u64, code: u16) {
        let Some(call) = self.calls.get(&id) else { return };
        let Some((_, request)) = call.offer.clone() else { return };
        let local_tag = call.local_tag.clone();
        let user = call.local_uri.uri.user.clone().unwrap_or_else(|| "agentline".to_owned());
        let peer = call.peer;
        let reason = match code {
            180 => "Ringing",
            200 => "OK",
            404 => "Not Found",
            480 => "Temporarily Unavailable",
            486 => "Busy Here",
            _ => "Declined",
        };
        let Ok(mut response) = Message::response(&request, code, reason, Some(&local_tag)) else { return };
        let headers = response.headers_mut();
        let _ = headers.push("Server", USER_AGENT);
        if code < 300 {
            let _ = headers.push("Contact", &self.contact(&user, peer).to_string());
            let _ = headers.push("Allow", ALLOW);
        }
        if code == 200 {
            let body = self.answer_body(id, &request);
            if !self.settings.session_expires.is_zero() {
                self.session_timer_answer(id, &request, &mut response);
            }
            if let Some(body) = body {
                let _ = response.set_body("application/sdp", body);
            }
        }
        let sent = self.tx.send_response(response, std::time::Instant::now());
        if let Err(err) = &sent {
            tracing::info!(error = ?err, "an incoming INVITE could not be answered (its transaction ended)");
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        match (code, sent) {
            (180, Ok(())) => {}
            (200, Ok(())) => {
                call.dialog.on_event(Event::Accepted);
            }
            (_, Err(_)) => {
                self.tell(id, LegEvent::Hangup { cause: HangupCause::Cancelled, sip_code: None });
                self.remove(id);
            }
            _ => self.remove(id),
        }
    }

    /// The SDP for a 200 to an INVITE: our answer to its offer, or our offer (late offer).
    fn answer_body(&mut self, id: u64, request: &Message) -> Option<Vec<u8>> {
        let call = self.calls.get_mut(&id)?;
        if request.has_sdp() {
            let offer = SessionDescription::parse(request.body()).ok()?;
            stamp_sdp(&mut call.media, |l| sdp::answer(&offer, l).ok().map(|(sd, _)| sd.to_bytes()))
        } else {
            stamp_sdp(&mut call.media, |l| sdp::offer(l).ok().map(|sd| sd.to_bytes()))
        }
    }

    fn on_ack(&mut self, request: Message) {
        let Some(id) = request.call_id().ok().and_then(|c| self.by_call_id.get(c).copied()) else { return };
        let Some(call) = self.calls.get_mut(&id) else { return };
        if let Some((key, _)) = &call.offer {
            self.tx.ack_received(key);
        }
        // §15: a hang-up between our 2xx and this ACK sends its BYE now.
        if let Some(action @ Action::SendBye) = call.dialog.on_event(Event::Ack) {
            self.perform(id, Some(action), Instant::now());
            return;
        }
        // Our offer was in the 2xx (late offer, or a re-INVITE without SDP): the answer is here.
        if request.has_sdp() && (call.media.negotiated.is_none() || call.media.awaiting_answer) {
            call.media.awaiting_answer = false;
            let negotiated = SessionDescription::parse(request.body())
                .ok()
                .and_then(|sd| sdp::accept_answer(&sd, &call.media.local).ok());
            if let Some(n) = negotiated {
                let codec = n.codec;
                let guarded = !call.to_trunk && !self.settings.allow_private_endpoints;
                let _ = call.media.remote.send(guarded_media(&n, guarded));
                let old = call.media.negotiated.as_ref().map_or(Codec::Pcmu, |n| n.codec);
                call.media.negotiated = Some(n);
                if codec != old {
                    self.tell(id, LegEvent::CodecChanged(codec));
                }
            }
        }
    }

    /// The far end cancelled an INVITE it sent us; the layer answered the CANCEL.
    fn on_cancelled(&mut self, invite: TxKey) {
        let id =
            self.calls.iter().find(|(_, c)| c.offer.as_ref().is_some_and(|(k, _)| *k == invite)).map(|(id, _)| *id);
        let Some(id) = id else { return };
        let Some(call) = self.calls.get_mut(&id) else { return };
        if let Some(Action::End { cause, sip_code }) = call.dialog.on_event(Event::RemoteCancel) {
            self.tell(id, LegEvent::Hangup { cause, sip_code });
            if let Some(request) = self.calls.get(&id).and_then(|c| c.offer.as_ref().map(|(_, r)| r.clone())) {
                let tag = self.calls.get(&id).map(|c| c.local_tag.clone());
                self.respond(&request, 487, "Request Terminated", tag.as_deref());
            }
            self.remove(id);
        }
    }

    fn on_reinvite(&mut self, id: u64, key: TxKey, request: Message) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let cseq = request.cseq().map(|(n, _)| n).unwrap_or(0);
        if call.remote_cseq.is_some_and(|last| cseq <= last) {
            // §12.2.2: out of order.
            self.respond(&request, 500, "Server Internal Error", None);
            return;
        }
        call.remote_cseq = Some(cseq);
        if !call.dialog.can_take_reinvite() {
            // §14.2: an offer crosses ours (glare), or the dialog is not confirmed yet.
            self.respond(&request, 491, "Request Pending", None);
            return;
        }
        let body = if request.has_sdp() {
            let Some(offer) = SessionDescription::parse(request.body()).ok() else {
                self.respond(&request, 400, "Bad Session Description", None);
                return;
            };
            // Keep the codec in use when the offer still has it (RFC 3264 §8.3.2).
            let mut local = call.media.local.clone();
            if let Some(n) = &call.media.negotiated {
                local.codecs.sort_by_key(|c| *c != n.codec);
            }
            let Ok((_, negotiated)) = sdp::answer(&offer, &local) else {
                self.respond(&request, 488, "Not Acceptable Here", None);
                return;
            };
            let old = call.media.negotiated.as_ref().map(|n| n.codec);
            let codec = negotiated.codec;
            let guarded = !call.to_trunk && !self.settings.allow_private_endpoints;
            let _ = call.media.remote.send(guarded_media(&negotiated, guarded));
            call.media.negotiated = Some(negotiated);
            call.media.awaiting_answer = false;
            // The answer, versioned against what we sent before (same bytes, same version).
            let body = stamp_sdp(&mut call.media, |l| {
                let mut l = l.clone();
                l.codecs = local.codecs.clone();
                sdp::answer(&offer, &l).ok().map(|(sd, _)| sd.to_bytes())
            });
            if old != Some(codec) {
                self.tell(id, LegEvent::CodecChanged(codec));
            }
            body
        } else {
            // No offer: ours goes in the 200 and the answer comes in the ACK.
            call.media.awaiting_answer = true;
            self.current_sdp(id)
        };
        let Some(call) = self.calls.get_mut(&id) else { return };
        if let Some(target) = request.contact().ok().and_then(|c| c.into_iter().next()) {
            call.remote_target = Some(target.uri);
        }
        let user = call.local_uri.uri.user.clone().unwrap_or_else(|| "agentline".to_owned());
        let peer = call.peer;
        // The 2xx is retransmitted until this re-INVITE's ACK arrives.
        call.offer = Some((key, request.clone()));
        let Ok(mut ok) = Message::response(&request, 200, "OK", None) else { return };
        let headers = ok.headers_mut();
        let _ = headers.push("Contact", &self.contact(&user, peer).to_string());
        let _ = headers.push("Allow", ALLOW);
        self.session_timer_answer(id, &request, &mut ok);
        if let Some(body) = body {
            let _ = ok.set_body("application/sdp", body);
        }
        self.send_response(ok);
    }

    /// RFC 4028 in a 2xx to a session refresh (re-INVITE or UPDATE): echo the interval (no
    /// smaller than the request's Min-SE or ours), name the refresher (the far end only when it
    /// supports timers; otherwise us, §9), require `timer` only from a peer that supports it,
    /// and re-arm our timer; a refresh without Session-Expires ends the session timer.
    fn session_timer_answer(&mut self, id: u64, request: &Message, ok: &mut Message) {
        let Ok(Some(se)) = request.session_expires() else {
            if let Some(call) = self.calls.get_mut(&id) {
                call.dialog.disarm_session();
            }
            return;
        };
        let supports = request.supported().iter().any(|t| t.eq_ignore_ascii_case("timer"));
        let min_se = request.min_se().ok().flatten().map_or(MIN_SE_SECS, |m| u64::from(m).max(MIN_SE_SECS));
        let secs = u64::from(se.delta_secs).max(min_se);
        let refresher = match (supports, se.refresher) {
            (false, _) | (true, Some(Refresher::Uas)) => "uas",
            (true, _) => "uac",
        };
        let headers = ok.headers_mut();
        let _ = headers.push("Session-Expires", &format!("{secs};refresher={refresher}"));
        if supports {
            let _ = headers.push("Require", "timer");
        }
        self.arm_session_timer(id, ok, Dir::In);
    }

    fn on_info(&mut self, id: u64, request: &Message) {
        let is_relay =
            request.content_type().is_some_and(|t| t.to_ascii_lowercase().starts_with("application/dtmf-relay"));
        if is_relay {
            let body = String::from_utf8_lossy(request.body());
            let mut digit = None;
            let mut duration_ms = 100;
            for line in body.lines() {
                let Some((name, value)) = line.split_once('=') else { continue };
                match name.trim().to_ascii_lowercase().as_str() {
                    "signal" => {
                        digit = value.trim().chars().next().filter(|c| c.is_ascii_digit() || "*#ABCDabcd".contains(*c))
                    }
                    "duration" => duration_ms = value.trim().parse().unwrap_or(100),
                    _ => {}
                }
            }
            if let Some(digit) = digit {
                self.tell(id, LegEvent::Dtmf { digit: digit.to_ascii_uppercase(), duration_ms });
            }
        }
        self.respond(request, 200, "OK", None);
    }

    // ----- registration ------------------------------------------------------------------

    fn register(&mut self, now: Instant) {
        let expires = u32::try_from(self.settings.register_expires.as_secs()).unwrap_or(3600);
        self.send_register(now, expires);
    }

    fn send_register(&mut self, _now: Instant, expires: u32) {
        self.send_register_with(expires, None);
    }

    /// A REGISTER of our Contact for `expires` seconds (0 removes it), with credentials when
    /// answering a challenge; each one a new CSeq in the registration's Call-ID.
    fn send_register_with(&mut self, expires: u32, credentials: Option<(AuthKind, String)>) {
        let peer = self.trunk;
        let user = self.settings.user.clone();
        self.registration.cseq += 1;
        let aor = NameAddr::new(Uri::sip(Some(&user), &self.settings.trunk_host));
        let head = RequestHead {
            uri: self.trunk_uri(None),
            via: self.via(peer),
            from: aor.clone().with_tag(&self.registration.tag),
            to: aor,
            call_id: self.registration.call_id.clone(),
            cseq: self.registration.cseq,
            max_forwards: 70,
            route: Vec::new(),
            contact: Some(self.contact(&user, peer)),
        };
        match Message::register(&head, expires) {
            Ok(mut register) => {
                let headers = register.headers_mut();
                let _ = headers.push("User-Agent", USER_AGENT);
                if let Some((kind, value)) = credentials {
                    let _ = headers.push(kind.credentials_header(), &value);
                }
                self.registration.key = self.send_request(REGISTRATION, Purpose::Register, register, peer);
            }
            Err(err) => tracing::warn!(error = %err, "cannot build REGISTER"),
        }
    }

    fn on_register_response(&mut self, code: u16, response: &Message) {
        match code {
            100..=199 => {}
            200..=299 => {
                let granted = response
                    .contact()
                    .ok()
                    .and_then(|c| c.into_iter().next())
                    .and_then(|c| c.param("expires").and_then(|p| p.value.as_deref()?.parse::<u64>().ok()))
                    .or_else(|| response.expires().ok().flatten().map(u64::from))
                    .unwrap_or(self.settings.register_expires.as_secs())
                    .max(60);
                self.registration.auth_tried = false;
                let granted = granted.min(u64::from(u32::MAX));
                self.registration.next_at = Some(Instant::now() + Duration::from_secs(granted * 3 / 4));
                if !matches!(*self.link.borrow(), LinkState::Up) {
                    tracing::info!(expires = granted, "registered with the SIP trunk");
                }
                self.link.send_replace(LinkState::Up);
            }
            401 | 407 if !self.registration.auth_tried => {
                self.registration.auth_tried = true;
                let Some(kind) = AuthKind::for_status(code) else { return };
                let Some(challenge) = response.challenges(kind).ok().and_then(|c| c.into_iter().next()) else {
                    self.registration_failed("a challenge without Digest");
                    return;
                };
                let uri = self.trunk_uri(None).to_string();
                let request = DigestRequest { method: "REGISTER", uri: &uri, body: &[] };
                let Ok(credentials) =
                    challenge.respond(&self.settings.user, &self.settings.password, &request, &token(), 1)
                else {
                    self.registration_failed("the challenge cannot be answered");
                    return;
                };
                let expires = u32::try_from(self.settings.register_expires.as_secs()).unwrap_or(3600);
                self.send_register_with(expires, Some((kind, credentials.to_string())));
            }
            _ => self.registration_failed(&format!("the registrar answered {code}")),
        }
    }

    fn registration_failed(&mut self, why: &str) {
        tracing::warn!(reason = why, "SIP registration failed; retrying in 30 s");
        self.link.send_replace(LinkState::Down { reason: format!("SIP registration failed: {why}") });
        self.registration.next_at = Some(Instant::now() + Duration::from_secs(30));
    }
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The 200 to an OPTIONS: what we allow, accept and support.
fn options_ok(request: &Message, to_tag: Option<&str>) -> Option<Message> {
    let mut ok = Message::response(request, 200, "OK", to_tag).ok()?;
    let headers = ok.headers_mut();
    let _ = headers.push("Allow", ALLOW);
    let _ = headers.push("Accept", "application/sdp");
    let _ = headers.push("Supported", "timer");
    Some(ok)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The dialog logic, driven without SIP sockets: the far end is these tests, reading the
/// core's outbox and feeding its answers through the transaction layer. (Media sockets are
/// bound on 127.0.0.1: a leg cannot exist without one.)
#[cfg(test)]
mod tests {
    use super::*;
    use crate::telco::sip::message::Framing;

    const TRUNK: &str = "127.0.0.1:5090";
    const OURS: &str = "+12025550100";
    const FAR: &str = "+14155550123";
    const FAR_SDP: &str = "v=0\r\no=far 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n";

    struct Harness {
        core: Core,
        incoming: mpsc::Receiver<IncomingCall>,
        commands: mpsc::Receiver<Command>,
    }

    fn settings(user: &str) -> SipSettings {
        SipSettings {
            trunk_host: "127.0.0.1".to_owned(),
            trunk_port: 5090,
            tcp: false,
            user: user.to_owned(),
            password: "secret".to_owned(),
            listen: "127.0.0.1:5060".parse().expect("addr"),
            public_ip: None,
            public_port: None,
            register: false,
            register_expires: Duration::from_secs(3600),
            session_expires: Duration::from_secs(1800),
            invite_timeout: Duration::from_secs(60),
            rtp_ports: (41000, 41999),
            codecs: vec![sdp::Codec::G722, sdp::Codec::Pcmu, sdp::Codec::Pcma],
            jitter_frames: 2,
            allow_private_endpoints: true,
            carrier_networks: Vec::new(),
            timers: Timers::default(),
        }
    }

    fn harness(settings: SipSettings) -> Harness {
        let (incoming_tx, incoming) = mpsc::channel(8);
        let (commands_tx, commands) = mpsc::channel(64);
        let (link, _) = watch::channel(LinkState::Up);
        let trunk_addr: SocketAddr = TRUNK.parse().expect("addr");
        let core = Core {
            tx: TxLayer::new(settings.timers),
            outbox: Vec::new(),
            listen_ip: settings.listen.ip(),
            public: settings.listen,
            settings,
            trunk: Peer { addr: trunk_addr, transport: Kind::Udp },
            carrier: Carrier { trunk: vec![trunk_addr.ip()], networks: Vec::new() },
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            by_tx: HashMap::new(),
            next_id: 1,
            incoming: incoming_tx,
            owned: Arc::new(|n: &E164| n.as_str() == OURS),
            commands: commands_tx,
            rtp_cursor: 0,
            link,
            registration: Registration::default(),
            call_tasks: TaskSet::new("sip call media"),
        };
        Harness { core, incoming, commands }
    }

    fn trunk() -> Peer {
        Peer { addr: TRUNK.parse().expect("addr"), transport: Kind::Udp }
    }

    impl Harness {
        /// Everything the core sent since the last call, parsed.
        fn sent(&mut self) -> Vec<Message> {
            self.core.flush();
            self.core
                .outbox
                .drain(..)
                .map(|(_, bytes)| Message::parse(&bytes, Framing::Datagram).expect("the core sends valid SIP"))
                .collect()
        }

        fn feed(&mut self, message: Message) {
            self.core.tx.on_message(message, trunk(), std::time::Instant::now());
            self.core.flush();
        }

        /// Leg commands are forwarded by a task; hand them to the core as its loop would.
        async fn pump_commands(&mut self) {
            while let Ok(Some(command)) = tokio::time::timeout(Duration::from_millis(200), self.commands.recv()).await {
                self.core.on_command(command);
                if self.commands.is_empty() {
                    break;
                }
            }
        }
    }

    fn method_of(m: &Message) -> Option<Method> {
        m.method().cloned()
    }

    fn reply(request: &Message, code: u16, reason: &str, sdp: Option<&str>) -> Message {
        let mut response = Message::response(request, code, reason, Some("far-tag")).expect("response");
        if (101..300).contains(&code) {
            response.headers_mut().push("Contact", "<sip:far@127.0.0.1:5090>").expect("contact");
        }
        if let Some(sdp) = sdp {
            response.set_body("application/sdp", sdp.as_bytes().to_vec()).expect("body");
        }
        response
    }

    async fn next_event(leg: &mut Leg) -> LegEvent {
        tokio::time::timeout(Duration::from_secs(2), leg.events.recv()).await.expect("an event").expect("open")
    }

    fn dial(h: &mut Harness) -> (Leg, Message) {
        let leg = h
            .core
            .dial(E164::parse(OURS).expect("e164"), E164::parse(FAR).expect("e164"), Instant::now())
            .expect("dialled");
        let sent = h.sent();
        assert_eq!(sent.len(), 1);
        (leg, sent[0].clone())
    }

    #[tokio::test]
    async fn outbound_call_rings_answers_and_hangs_up_with_bye() {
        let mut h = harness(settings(""));
        let (mut leg, invite) = dial(&mut h);
        assert_eq!(method_of(&invite), Some(Method::Invite));
        assert_eq!(invite.request_uri().expect("uri").to_string(), format!("sip:{FAR}@127.0.0.1:5090"));
        let offer = String::from_utf8(invite.body().to_vec()).expect("utf8");
        assert!(offer.contains("m=audio 41") && offer.contains(" RTP/AVP 9 0 8 101"), "{offer}");
        assert_eq!(invite.header("Session-Expires"), Some("1800"));
        h.feed(reply(&invite, 100, "Trying", None));
        h.feed(reply(&invite, 180, "Ringing", None));
        assert_eq!(next_event(&mut leg).await, LegEvent::Ringing);
        let ok = reply(&invite, 200, "OK", Some(FAR_SDP));
        h.feed(ok.clone());
        assert_eq!(next_event(&mut leg).await, LegEvent::CodecChanged(Codec::Pcma));
        assert_eq!(next_event(&mut leg).await, LegEvent::Answered);
        let acks = h.sent();
        assert_eq!(acks.len(), 1);
        assert_eq!(method_of(&acks[0]), Some(Method::Ack));
        assert_eq!(acks[0].request_uri().expect("uri").to_string(), "sip:far@127.0.0.1:5090");
        assert!(acks[0].header("To").expect("to").contains("far-tag"));
        // A retransmitted 200 (our ACK was lost) gets the same ACK again, and no new event.
        h.feed(ok);
        let again = h.sent();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].to_bytes(), acks[0].to_bytes());
        assert!(leg.events.try_recv().is_err());
        // The agent hangs up: BYE in the dialog, CSeq 2.
        leg.commands.send(LegCommand::Hangup).await.expect("send");
        h.pump_commands().await;
        let bye = h.sent();
        assert_eq!(bye.len(), 1);
        assert_eq!(method_of(&bye[0]), Some(Method::Bye));
        assert_eq!(bye[0].cseq().expect("cseq"), (2, Method::Bye));
        assert!(bye[0].header("To").expect("to").contains("far-tag"));
        assert!(h.core.calls.is_empty());
    }

    /// At shutdown the core's calls take their tasks with them: the RTP socket is closed (its
    /// port free again) and the relay of leg commands has ended, even though the voice service
    /// still holds the leg, and none of it waits for the abort deadline.
    #[tokio::test]
    async fn ending_the_calls_at_shutdown_joins_their_media_and_relay_tasks() {
        let mut h = harness(settings(""));
        let (mut leg, invite) = dial(&mut h);
        let offer = String::from_utf8(invite.body().to_vec()).expect("utf8");
        let port: u16 = offer
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|p| p.parse().ok())
            .expect("the offer names its RTP port");
        let rtp: SocketAddr = ([127, 0, 0, 1], port).into();
        assert!(std::net::UdpSocket::bind(rtp).is_err(), "the call's media socket holds the port");
        assert_eq!(h.core.call_tasks.len(), 2, "media and relay");

        let Harness { mut core, commands, .. } = h;
        drop(commands);
        tokio::time::timeout(CALL_TASKS_DRAIN / 2, core.end_calls()).await.expect("ended without an abort");
        assert!(core.call_tasks.is_empty());
        assert!(leg.commands.is_closed(), "the relay of leg commands has ended");
        assert_eq!(leg.events.recv().await, None, "the call and its media task are gone");
        std::net::UdpSocket::bind(rtp).expect("the RTP port is free again");
    }

    /// A 2xx retransmitted after we hung up a call to an agent's own endpoint is ACKed and
    /// BYEd at that endpoint, not at the trunk.
    #[tokio::test]
    async fn a_late_2xx_from_an_agent_endpoint_is_acked_and_byed_there() {
        let mut h = harness(settings(""));
        let agent = Peer { addr: "203.0.113.5:5070".parse().expect("addr"), transport: Kind::Udp };
        let uri = Uri::parse("sip:agent@203.0.113.5:5070").expect("uri");
        let to = NameAddr::new(uri.clone());
        let mut leg = h
            .core
            .dial_target(E164::parse(OURS).expect("e164"), uri, to, agent, false, Instant::now())
            .expect("dialled");
        h.core.flush();
        let (dest, bytes) = h.core.outbox.pop().expect("the INVITE");
        assert_eq!(dest, agent);
        let invite = Message::parse(&bytes, Framing::Datagram).expect("sip");
        let mut ok = Message::response(&invite, 200, "OK", Some("agent-tag")).expect("200");
        ok.headers_mut().push("Contact", "<sip:agent@203.0.113.5:5070>").expect("contact");
        ok.set_body("application/sdp", FAR_SDP.as_bytes().to_vec()).expect("body");
        h.feed(ok.clone());
        while !matches!(next_event(&mut leg).await, LegEvent::Answered) {}
        leg.commands.send(LegCommand::Hangup).await.expect("send");
        h.pump_commands().await;
        h.core.flush();
        h.core.outbox.clear(); // the ACK and our BYE
        assert!(h.core.calls.is_empty());

        h.feed(ok);
        h.core.flush();
        let sent: Vec<(Peer, Option<Method>)> = h
            .core
            .outbox
            .drain(..)
            .map(|(to, bytes)| (to, Message::parse(&bytes, Framing::Datagram).expect("sip").method().cloned()))
            .collect();
        assert_eq!(sent, vec![(agent, Some(Method::Ack)), (agent, Some(Method::Bye))]);
    }

    #[tokio::test]
    async fn digest_challenge_is_answered_once_and_busy_ends_the_call() {
        let mut h = harness(settings("agent"));
        let (mut leg, invite) = dial(&mut h);
        let mut challenge = reply(&invite, 401, "Unauthorized", None);
        challenge
            .headers_mut()
            .push("WWW-Authenticate", r#"Digest realm="agentline.test", nonce="abc123", algorithm=MD5, qop="auth""#)
            .expect("header");
        h.feed(challenge);
        let sent = h.sent();
        let methods: Vec<_> = sent.iter().map(method_of).collect();
        assert_eq!(methods, vec![Some(Method::Ack), Some(Method::Invite)], "ACK for the 401, then the retry");
        let retry = &sent[1];
        assert_eq!(retry.cseq().expect("cseq"), (2, Method::Invite));
        assert_ne!(retry.top_via().expect("via").branch(), invite.top_via().expect("via").branch());
        let auth = retry.header("Authorization").expect("credentials");
        assert!(auth.contains(r#"username="agent""#) && auth.contains("nc=00000001"), "{auth}");
        // A second challenge is not answered again: the call fails.
        let mut again = reply(retry, 401, "Unauthorized", None);
        again.headers_mut().push("WWW-Authenticate", r#"Digest realm="r", nonce="n2""#).expect("header");
        h.feed(again);
        assert_eq!(next_event(&mut leg).await, LegEvent::Hangup { cause: HangupCause::Failed, sip_code: Some(401) });
        assert_eq!(h.sent().iter().map(method_of).collect::<Vec<_>>(), vec![Some(Method::Ack)]);

        let (mut leg, invite) = dial(&mut h);
        h.feed(reply(&invite, 486, "Busy Here", None));
        assert_eq!(next_event(&mut leg).await, LegEvent::Hangup { cause: HangupCause::Busy, sip_code: Some(486) });
        assert_eq!(h.sent().iter().map(method_of).collect::<Vec<_>>(), vec![Some(Method::Ack)]);
        assert!(h.core.calls.is_empty());
    }

    #[tokio::test]
    async fn cancel_waits_for_a_provisional_and_a_crossing_200_gets_ack_and_bye() {
        let mut h = harness(settings(""));
        let (leg, invite) = dial(&mut h);
        // Hung up before any provisional: no CANCEL yet (§9.1).
        leg.commands.send(LegCommand::Hangup).await.expect("send");
        h.pump_commands().await;
        assert!(h.sent().is_empty());
        h.feed(reply(&invite, 180, "Ringing", None));
        let cancel = h.sent();
        assert_eq!(cancel.iter().map(method_of).collect::<Vec<_>>(), vec![Some(Method::Cancel)]);
        assert_eq!(cancel[0].top_via().expect("via").branch(), invite.top_via().expect("via").branch());
        // The 200 crosses the CANCEL: ACK it, then BYE.
        h.feed(reply(&invite, 200, "OK", Some(FAR_SDP)));
        let methods: Vec<_> = h.sent().iter().map(method_of).collect();
        assert_eq!(methods, vec![Some(Method::Ack), Some(Method::Bye)]);
        assert!(h.core.calls.is_empty());
        drop(leg);

        // The usual way: 180, CANCEL, 487.
        let (mut leg, invite) = dial(&mut h);
        h.feed(reply(&invite, 180, "Ringing", None));
        assert_eq!(next_event(&mut leg).await, LegEvent::Ringing);
        leg.commands.send(LegCommand::Hangup).await.expect("send");
        h.pump_commands().await;
        assert_eq!(h.sent().iter().map(method_of).collect::<Vec<_>>(), vec![Some(Method::Cancel)]);
        h.feed(reply(&invite, 487, "Request Terminated", None));
        assert_eq!(next_event(&mut leg).await, LegEvent::Hangup { cause: HangupCause::Cancelled, sip_code: Some(487) });
    }

    fn far_invite(to: &str, sdp: Option<&str>, extra: &[(&str, &str)]) -> Message {
        let head = RequestHead {
            uri: Uri::sip(Some(to), "127.0.0.1").with_port(5060),
            via: Via::new("UDP", "127.0.0.1", Some(5090), &branch()),
            from: NameAddr::new(Uri::sip(Some(FAR), "127.0.0.1")).with_tag("far-tag"),
            to: NameAddr::new(Uri::sip(Some(to), "127.0.0.1")),
            call_id: format!("{}@far", token()),
            cseq: 1,
            max_forwards: 70,
            route: Vec::new(),
            contact: Some(NameAddr::new(Uri::sip(Some("far"), "127.0.0.1").with_port(5090))),
        };
        let mut invite = Message::invite(&head, sdp.map(|s| s.as_bytes().to_vec())).expect("invite");
        for (name, value) in extra {
            invite.headers_mut().push(name, value).expect("header");
        }
        invite
    }

    fn codes(sent: &[Message]) -> Vec<u16> {
        sent.iter().filter_map(Message::status_code).collect()
    }

    #[tokio::test]
    async fn inbound_call_rings_is_answered_and_ends_on_bye() {
        let mut h = harness(settings(""));
        let invite =
            far_invite(OURS, Some(FAR_SDP), &[("Session-Expires", "600;refresher=uac"), ("Supported", "timer")]);
        h.feed(invite.clone());
        assert_eq!(codes(&h.sent()), vec![100]);
        let mut offered = h.incoming.try_recv().expect("offered to the voice service");
        assert_eq!(offered.to.as_str(), OURS);
        assert_eq!(offered.from, FAR);
        assert_eq!(offered.leg.codec, Codec::Pcma, "answered in the offer's only codec");
        offered.leg.commands.send(LegCommand::Ring).await.expect("send");
        h.pump_commands().await;
        let ringing = h.sent();
        assert_eq!(codes(&ringing), vec![180]);
        let tag = ringing[0].to().expect("to").tag().map(str::to_owned).expect("our To tag");
        offered.leg.commands.send(LegCommand::Answer).await.expect("send");
        h.pump_commands().await;
        let ok = h.sent();
        assert_eq!(codes(&ok), vec![200]);
        assert_eq!(ok[0].to().expect("to").tag(), Some(tag.as_str()), "one To tag for the dialog");
        let answer = String::from_utf8(ok[0].body().to_vec()).expect("utf8");
        assert!(answer.contains("m=audio 41") && answer.contains("RTP/AVP 8 101"), "{answer}");
        assert_eq!(ok[0].header("Session-Expires"), Some("600;refresher=uac"));
        assert_eq!(ok[0].header("Require"), Some("timer"));
        // ACK, then the far end hangs up.
        let mut in_dialog = far_invite(OURS, None, &[]);
        let headers = in_dialog.headers_mut();
        headers.set("Call-ID", invite.call_id().expect("call id")).expect("set");
        headers.set("To", &format!("<sip:{OURS}@127.0.0.1>;tag={tag}")).expect("set");
        let mut ack = in_dialog.clone();
        let mut bye = in_dialog;
        ack.headers_mut().set("CSeq", "1 ACK").expect("set");
        bye.headers_mut().set("CSeq", "2 BYE").expect("set");
        let ack = Message::parse(
            &String::from_utf8(ack.to_bytes()).expect("utf8").replacen("INVITE", "ACK", 1).into_bytes(),
            Framing::Datagram,
        )
        .expect("ack");
        h.feed(ack);
        assert!(h.sent().is_empty());
        let bye = Message::parse(
            &String::from_utf8(bye.to_bytes()).expect("utf8").replacen("INVITE", "BYE", 1).into_bytes(),
            Framing::Datagram,
        )
        .expect("bye");
        h.feed(bye);
        assert_eq!(codes(&h.sent()), vec![200]);
        assert_eq!(next_event(&mut offered.leg).await, LegEvent::Hangup { cause: HangupCause::Normal, sip_code: None });
        assert!(h.core.calls.is_empty());
    }

    #[tokio::test]
    async fn inbound_refusals_not_ours_stranger_busy_short_session() {
        let mut h = harness(settings(""));
        h.feed(far_invite("+19998887777", Some(FAR_SDP), &[]));
        assert_eq!(codes(&h.sent()), vec![100, 404]);
        // From an address that is not the trunk.
        let stranger = Peer { addr: "127.0.0.2:5090".parse().expect("addr"), transport: Kind::Udp };
        let invite = far_invite(OURS, Some(FAR_SDP), &[]);
        let held = h.core.tx.len();
        assert!(!h.core.screen(&invite, stranger), "refused before the transaction layer");
        let sent = h.sent();
        assert_eq!(codes(&sent), vec![403], "statelessly: no 100, nothing held");
        assert!(sent[0].to().expect("to").tag().is_some(), "a final response carries a To tag");
        assert_eq!(h.core.tx.len(), held, "no transaction for it");
        h.feed(far_invite(OURS, Some(FAR_SDP), &[("Session-Expires", "30")]));
        assert_eq!(codes(&h.sent()), vec![100, 422]);
        // No codec in common.
        let g729 = FAR_SDP.replace("RTP/AVP 8 101", "RTP/AVP 18").replace("a=rtpmap:8 PCMA/8000\r\n", "");
        h.feed(far_invite(OURS, Some(&g729), &[]));
        assert_eq!(codes(&h.sent()), vec![100, 488]);
        // The voice service refuses (no presence socket): 486.
        h.feed(far_invite(OURS, Some(FAR_SDP), &[]));
        let offered = h.incoming.try_recv().expect("offered");
        offered.leg.commands.send(LegCommand::Reject(Refusal::Busy)).await.expect("send");
        h.pump_commands().await;
        assert_eq!(codes(&h.sent()), vec![100, 486]);
        assert!(h.core.calls.is_empty());
        // OPTIONS out of dialog is answered with what we allow.
        let mut options = far_invite(OURS, None, &[]);
        options = Message::parse(
            &String::from_utf8(options.to_bytes()).expect("utf8").replace("INVITE", "OPTIONS").into_bytes(),
            Framing::Datagram,
        )
        .expect("options");
        h.feed(options);
        let sent = h.sent();
        assert_eq!(codes(&sent), vec![200]);
        assert_eq!(sent[0].header("Allow"), Some(ALLOW));
    }

    /// An outbound call answered (PCMA) with `Session-Expires: session_expires`; its events read.
    async fn answered_with_session_timer(h: &mut Harness, session_expires: &str) -> (Leg, Message) {
        let (mut leg, invite) = dial(h);
        let mut ok = reply(&invite, 200, "OK", Some(FAR_SDP));
        ok.headers_mut().push("Session-Expires", session_expires).expect("header");
        h.feed(ok);
        let _ = h.sent();
        assert_eq!(next_event(&mut leg).await, LegEvent::CodecChanged(Codec::Pcma));
        assert_eq!(next_event(&mut leg).await, LegEvent::Answered);
        (leg, invite)
    }

    #[tokio::test]
    async fn refresher_sends_reinvite_at_half_interval_and_answers_hold() {
        let mut h = harness(settings(""));
        let (_leg, invite) = answered_with_session_timer(&mut h, "120;refresher=uac").await;
        let call = h.core.calls.values().next().expect("call");
        let refresh_at = Instant::from_std(call.dialog.refresh_at().expect("we refresh"));
        assert!(call.dialog.expire_at().is_none());
        h.core.on_timers(refresh_at + Duration::from_millis(1));
        let sent = h.sent();
        let reinvite = sent.iter().find(|m| method_of(m) == Some(Method::Invite)).expect("a refresh");
        assert!(reinvite.header("To").expect("to").contains("far-tag"));
        assert_eq!(reinvite.header("Session-Expires"), Some("120;refresher=uac"));
        assert!(reinvite.has_sdp());
        // The far end puts us on hold with a re-INVITE.
        let hold = |cseq: u32| {
            let mut hold = far_invite(OURS, Some(&FAR_SDP.replace("a=sendrecv", "a=sendonly")), &[]);
            let headers = hold.headers_mut();
            headers.set("Call-ID", invite.call_id().expect("call id")).expect("set");
            headers.set("To", invite.header("From").expect("from")).expect("set");
            headers.set("From", &format!("<sip:{FAR}@127.0.0.1>;tag=far-tag")).expect("set");
            headers.set("CSeq", &format!("{cseq} INVITE")).expect("set");
            hold
        };
        // While our refresh is unanswered that is glare: 491 (§14.2).
        h.feed(hold(7));
        assert_eq!(codes(&h.sent()), vec![100, 491]);
        // Our refresh is answered (and ACKed); the far end tries again: answered with our SDP, media stop.
        h.feed(reply(reinvite, 200, "OK", Some(FAR_SDP)));
        assert_eq!(h.sent().iter().map(method_of).collect::<Vec<_>>(), vec![Some(Method::Ack)]);
        h.feed(hold(8));
        let sent = h.sent();
        assert_eq!(codes(&sent), vec![100, 200]);
        assert!(String::from_utf8_lossy(sent[1].body()).contains("a=recvonly"), "hold answered recvonly");
        let call = h.core.calls.values().next().expect("call");
        assert_eq!(call.media.remote.borrow().map(|r| r.send), Some(false), "we stay silent while held");
        // An older CSeq is out of order (§12.2.2).
        h.feed(hold(6));
        assert_eq!(codes(&h.sent()), vec![100, 500]);
    }

    #[tokio::test]
    async fn a_session_the_far_end_never_refreshes_is_ended_with_bye() {
        let mut h = harness(settings(""));
        let (mut leg, _) = answered_with_session_timer(&mut h, "120;refresher=uas").await;
        let call = h.core.calls.values().next().expect("call");
        assert!(call.dialog.refresh_at().is_none(), "the far end refreshes");
        let expire_at = Instant::from_std(call.dialog.expire_at().expect("a deadline"));
        // RFC 4028 §10: BYE at the interval minus min(32 s, interval / 3).
        let left = expire_at - Instant::now();
        assert!(left > Duration::from_secs(85) && left <= Duration::from_secs(88), "{left:?}");
        h.core.on_timers(expire_at + Duration::from_millis(1));
        let sent = h.sent();
        assert!(sent.iter().any(|m| method_of(m) == Some(Method::Bye)), "BYE on expiry");
        assert_eq!(next_event(&mut leg).await, LegEvent::Hangup { cause: HangupCause::Failed, sip_code: Some(408) });
        assert!(h.core.calls.is_empty());
    }

    #[tokio::test]
    async fn early_media_from_a_183_then_answer_and_a_decline_is_failed() {
        let mut h = harness(settings(""));
        let (mut leg, invite) = dial(&mut h);
        let g722 =
            FAR_SDP.replace("RTP/AVP 8 101", "RTP/AVP 9 101").replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:9 G722/8000");
        h.feed(reply(&invite, 183, "Session Progress", Some(&g722)));
        assert_eq!(next_event(&mut leg).await, LegEvent::CodecChanged(Codec::G722));
        assert_eq!(next_event(&mut leg).await, LegEvent::EarlyMedia);
        let call = h.core.calls.values().next().expect("call");
        let remote = (*call.media.remote.borrow()).expect("media flow before the answer");
        assert_eq!((remote.addr.port(), remote.payload_type), (40000, 9));
        h.feed(reply(&invite, 200, "OK", Some(&g722)));
        assert_eq!(next_event(&mut leg).await, LegEvent::Answered, "no second codec change");
        let _ = h.sent();

        let (mut leg, invite) = dial(&mut h);
        h.feed(reply(&invite, 603, "Decline", None));
        assert_eq!(next_event(&mut leg).await, LegEvent::Hangup { cause: HangupCause::Failed, sip_code: Some(603) });
    }
}

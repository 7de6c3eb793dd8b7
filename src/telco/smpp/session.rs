//! One SMPP bind to an SMSC, owned by one task for its whole life: connect, bind, serve, and on
//! any failure close the socket, fail what was outstanding and redial with exponential backoff and
//! jitter (1 s doubling to the configured cap), so a flapping link never stacks binds at the SMSC.
//!
//! - Requests (`submit_sm`) go through [`Session::request`]: a window permit bounds the requests
//!   outstanding, a sequence number (1..=0x7FFFFFFF, wrapping) keys the response, and a response
//!   timeout turns silence into [`RequestError::Timeout`], which callers must treat as ambiguous.
//! - Frames are written by a writer task fed by a bounded queue and flushed when the queue runs dry,
//!   so a burst shares system calls; the reader answers `enquire_link`, routes responses and
//!   `generic_nack` to their requests and hands `deliver_sm` to the [`DeliverHandler`] with a
//!   [`Responder`] for the `deliver_sm_resp`, which the handler sends when it is safe to.
//! - `enquire_link` goes out every interval; a missing answer within the response timeout closes
//!   the link. A PDU that cannot be framed closes the link; one that frames but does not decode is
//!   answered with `generic_nack`.
//! - On shutdown the session sends `unbind`, waits (bounded) for `unbind_resp`, then closes.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::pdu::{self, Bind, Body, CommandId, Header, Pdu, PduError, status};
use crate::future::BoxFuture;
use crate::secret::Secret;
use crate::tasks::TaskSet;
use crate::telco::LinkState;

/// Largest sequence number (§3.2); the next one wraps to 1.
const MAX_SEQUENCE: u32 = 0x7FFF_FFFF;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// How long shutdown waits for `unbind_resp`.
const UNBIND_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    Transceiver,
    Transmitter,
    Receiver,
}

impl BindKind {
    fn command(self) -> CommandId {
        match self {
            Self::Transceiver => CommandId::BIND_TRANSCEIVER,
            Self::Transmitter => CommandId::BIND_TRANSMITTER,
            Self::Receiver => CommandId::BIND_RECEIVER,
        }
    }

    pub fn can_submit(self) -> bool {
        self != Self::Receiver
    }

    pub fn can_receive(self) -> bool {
        self != Self::Transmitter
    }
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `host:port` of the SMSC.
    pub addr: String,
    pub system_id: String,
    pub password: Secret,
    pub system_type: String,
    pub bind: BindKind,
    /// Requests outstanding at most.
    pub window: usize,
    pub response_timeout: Duration,
    pub enquire_link_interval: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// TLS over the TCP connection (`smpps://`); `None`: plain TCP.
    pub tls: Option<SmppTls>,
}

/// TLS for an SMPP link: the binary's one client configuration and the name the SMSC's
/// certificate must carry.
#[derive(Clone)]
pub struct SmppTls {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for SmppTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmppTls").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// A connection to the SMSC: plain TCP, or TLS over it.
trait Link: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Link for T {}
type BoxLink = Box<dyn Link>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not bound: nothing was sent.
    #[error("not bound to the SMSC")]
    NotBound,
    /// The link closed before the response; the SMSC may have read the request.
    #[error("the SMSC link closed before the response")]
    ConnectionLost,
    /// No response in time; the SMSC may or may not have acted on the request.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("request not encodable: {0}")]
    Encode(PduError),
}

/// Why a bind was not made or a bound link ended. Its text is the link's `Down` reason, shown to
/// operators on `/health/ready`, and the session redials after any of them but [`Self::ShutDown`].
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("connect failed: {0}")]
    Connect(io::Error),
    /// The TLS handshake failed (an untrusted or misnamed certificate, no TLS at the far end).
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    #[error("bind not encodable: {0}")]
    EncodeBind(PduError),
    #[error("no bind response within {0:?}")]
    BindTimeout(Duration),
    #[error("the SMSC sent PDUs before answering the bind")]
    PduBeforeBindResp,
    /// A `bind_*_resp` with an error status, or a PDU other than the bind's response.
    #[error("bind refused with status {status:#x}")]
    BindRefused { status: u32 },
    /// The bind's response did not decode.
    #[error("undecodable PDU: {0}")]
    Undecodable(PduError),
    #[error("unframeable PDU from the SMSC: {0}")]
    Unframeable(PduError),
    #[error("the SMSC closed the connection")]
    Closed,
    #[error("read failed: {0}")]
    Read(io::Error),
    #[error("write failed: {0}")]
    Write(io::Error),
    #[error("enquire_link failed: {0}")]
    EnquireLink(RequestError),
    #[error("the SMSC unbound")]
    Unbound,
    /// We unbound: the service is stopping.
    #[error("shut down")]
    ShutDown,
}

/// Sends the `deliver_sm_resp` for one `deliver_sm`, on the connection it arrived on.
#[derive(Debug)]
pub struct Responder {
    out: mpsc::Sender<Vec<u8>>,
    sequence_number: u32,
    /// The connection's tasks: a deferred answer waits among them and ends with the connection.
    tasks: TaskSet,
}

impl Responder {
    /// Answers with `command_status` (0 = taken). If the link has closed meanwhile the SMSC will
    /// deliver again, which is the safe outcome.
    pub async fn respond(self, command_status: u32) {
        let resp = Pdu {
            command_id: CommandId::DELIVER_SM_RESP,
            command_status,
            sequence_number: self.sequence_number,
            body: Body::DeliverSmResp,
        };
        if let Ok(bytes) = pdu::encode(&resp) {
            let _ = self.out.send(bytes).await;
        }
    }

    /// Answers with the status `decided` resolves to, without holding the reader up meanwhile.
    /// The wait is one of the connection's tasks: if the link closes first it is dropped
    /// unanswered, and the SMSC delivers again.
    pub fn respond_when(self, decided: impl Future<Output = u32> + Send + 'static) {
        let tasks = self.tasks.clone();
        let _ = tasks.spawn(async move {
            let command_status = decided.await;
            self.respond(command_status).await;
        });
    }
}

/// What the network does with each `deliver_sm`. It must not hold the reader up: queue, then
/// answer through the responder when the message is safe.
pub trait DeliverHandler: Send + Sync + 'static {
    fn on_deliver(&self, pdu: Pdu, responder: Responder) -> BoxFuture<'_, ()>;
}

/// One connection's shared state; replaced on every reconnect.
struct Conn {
    out: mpsc::Sender<Vec<u8>>,
    pending: Mutex<HashMap<u32, oneshot::Sender<Pdu>>>,
    sequence: AtomicU32,
}

impl Conn {
    fn next_sequence(&self) -> u32 {
        // Starts at 2: the bind used 1.
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        n % MAX_SEQUENCE + 1
    }

    fn take_pending(&self, seq: u32) -> Option<oneshot::Sender<Pdu>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&seq)
    }
}

pub struct Session {
    settings: SessionSettings,
    conn: RwLock<Option<Arc<Conn>>>,
    window: Semaphore,
    state: watch::Sender<LinkState>,
}

impl Session {
    pub fn new(settings: SessionSettings) -> Arc<Self> {
        let window = Semaphore::new(settings.window.max(1));
        let (state, _) = watch::channel(LinkState::Down { reason: "connecting".to_owned() });
        Arc::new(Self { settings, conn: RwLock::new(None), window, state })
    }

    pub fn bind_kind(&self) -> BindKind {
        self.settings.bind
    }

    pub fn link_state(&self) -> LinkState {
        self.state.borrow().clone()
    }

    pub fn is_up(&self) -> bool {
        self.conn.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    fn current(&self) -> Option<Arc<Conn>> {
        self.conn.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends one request and waits for its response (which may carry an error status).
    pub async fn request(&self, command_id: CommandId, body: Body) -> Result<Pdu, RequestError> {
        let _permit = self.window.acquire().await.map_err(|_| RequestError::NotBound)?;
        let conn = self.current().ok_or(RequestError::NotBound)?;
        send_request(&conn, command_id, body, self.settings.response_timeout).await
    }

    /// Runs the session until `stop` turns true: dial, bind, serve, redial.
    pub async fn run(self: Arc<Self>, handler: Arc<dyn DeliverHandler>, mut stop: watch::Receiver<bool>) {
        let mut backoff = self.settings.reconnect_min;
        loop {
            if *stop.borrow() {
                break;
            }
            let reason = match self.connect_and_bind().await {
                Ok(stream) => {
                    backoff = self.settings.reconnect_min;
                    let reason = self.serve(stream, handler.as_ref(), &mut stop).await;
                    if *stop.borrow() {
                        self.set_down(&LinkError::ShutDown);
                        break;
                    }
                    reason
                }
                Err(reason) => reason,
            };
            tracing::warn!(smsc = %self.settings.addr, %reason, retry_in = ?backoff, "SMPP link down");
            self.set_down(&reason);
            // Full jitter over the upper half, so many binds never redial in step.
            let wait = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
            backoff = (backoff * 2).min(self.settings.reconnect_max);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// The link is down for `reason` (a [`LinkError`], or a phase such as "unbinding").
    fn set_down(&self, reason: &dyn std::fmt::Display) {
        self.state.send_replace(LinkState::Down { reason: reason.to_string() });
    }

    async fn connect_and_bind(&self) -> Result<BoxLink, LinkError> {
        let timeout = self.settings.response_timeout;
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(&self.settings.addr))
            .await
            .map_err(|_| LinkError::ConnectTimeout(timeout))?
            .map_err(LinkError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let mut stream: BoxLink = match &self.settings.tls {
            None => Box::new(tcp),
            Some(tls) => {
                let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                let handshake = connector.connect(tls.server_name.clone(), tcp);
                Box::new(
                    tokio::time::timeout(timeout, handshake)
                        .await
                        .map_err(|_| LinkError::ConnectTimeout(timeout))?
                        .map_err(LinkError::Tls)?,
                )
            }
        };
        let bind = Pdu {
            command_id: self.settings.bind.command(),
            command_status: status::ESME_ROK,
            sequence_number: 1,
            body: Body::Bind(Bind {
                system_id: self.settings.system_id.clone(),
                password: self.settings.password.expose().to_owned(),
                system_type: self.settings.system_type.clone(),
                interface_version: 0x34,
                addr_ton: 0,
                addr_npi: 0,
                address_range: String::new(),
            }),
        };
        let bytes = pdu::encode(&bind).map_err(LinkError::EncodeBind)?;
        stream.write_all(&bytes).await.map_err(LinkError::Write)?;
        let mut buf = Vec::with_capacity(256);
        let resp = tokio::time::timeout(timeout, read_one(&mut stream, &mut buf))
            .await
            .map_err(|_| LinkError::BindTimeout(timeout))??;
        if !buf.is_empty() {
            return Err(LinkError::PduBeforeBindResp);
        }
        match resp {
            Pdu { command_id, command_status: 0, sequence_number: 1, .. }
                if command_id == self.settings.bind.command().response() =>
            {
                Ok(stream)
            }
            Pdu { command_status, .. } => Err(LinkError::BindRefused { status: command_status }),
        }
    }

    /// Serves a bound connection; answers why it ended.
    async fn serve(
        &self,
        stream: BoxLink,
        handler: &dyn DeliverHandler,
        stop: &mut watch::Receiver<bool>,
    ) -> LinkError {
        let (mut reader, writer) = tokio::io::split(stream);
        let (out, out_rx) = mpsc::channel(self.settings.window * 2 + 64);
        let conn = Arc::new(Conn { out, pending: Mutex::new(HashMap::new()), sequence: AtomicU32::new(1) });
        let (dead_tx, mut dead) = mpsc::channel::<LinkError>(1);
        // The connection's own tasks (the writer, enquire_links in flight): they end with it.
        let tasks = TaskSet::new("smpp connection");
        tasks.spawn(write_loop(writer, out_rx, dead_tx.clone())).expect("invariant: a new task set is open");
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        self.state.send_replace(LinkState::Up);
        tracing::info!(smsc = %self.settings.addr, bind = ?self.settings.bind, "SMPP bound");

        let mut enquire = tokio::time::interval(self.settings.enquire_link_interval);
        enquire.reset();
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let reason = 'serve: loop {
            // Everything already buffered is handled before reading again.
            loop {
                match pdu::frame_len(&buf) {
                    Ok(None) => break,
                    Ok(Some(len)) => {
                        let ended = self.on_frame(&conn, &tasks, &buf[..len], handler).await;
                        buf.drain(..len);
                        if let Some(reason) = ended {
                            break 'serve reason;
                        }
                    }
                    Err(err) => break 'serve LinkError::Unframeable(err),
                }
            }
            buf.reserve(READ_CHUNK);
            tokio::select! {
                read = reader.read_buf(&mut buf) => match read {
                    Ok(0) => break 'serve LinkError::Closed,
                    Ok(_) => {}
                    Err(err) => break 'serve LinkError::Read(err),
                },
                _ = enquire.tick() => {
                    let conn = conn.clone();
                    let dead_tx = dead_tx.clone();
                    let timeout = self.settings.response_timeout;
                    let _ = tasks.spawn(async move {
                        if let Err(err) = send_request(&conn, CommandId::ENQUIRE_LINK, Body::EnquireLink, timeout).await
                            && err != RequestError::ConnectionLost
                        {
                            let _ = dead_tx.try_send(LinkError::EnquireLink(err));
                        }
                    });
                }
                Some(reason) = dead.recv() => break 'serve reason,
                _ = stop.changed() => {
                    // Unbind: tell the SMSC, wait (bounded) for its answer, then close.
                    self.set_down(&"unbinding");
                    *self.conn.write().unwrap_or_else(|e| e.into_inner()) = None;
                    let unbind = send_request(&conn, CommandId::UNBIND, Body::Unbind, UNBIND_WAIT);
                    let answered = tokio::select! {
                        r = unbind => r.is_ok(),
                        _ = drain_until_unbind_resp(&mut reader, &mut buf, &conn) => true,
                    };
                    tracing::info!(smsc = %self.settings.addr, answered, "SMPP unbound");
                    break 'serve LinkError::ShutDown;
                }
            }
        };
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = None;
        // Dropping the senders fails every outstanding request with ConnectionLost.
        conn.pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
        tasks.abort().await;
        reason
    }

    /// Handles one framed PDU; `Some(reason)` ends the connection.
    async fn on_frame(
        &self,
        conn: &Arc<Conn>,
        tasks: &TaskSet,
        frame: &[u8],
        handler: &dyn DeliverHandler,
    ) -> Option<LinkError> {
        let pdu = match pdu::decode(frame) {
            Ok(pdu) => pdu,
            Err(err) => {
                let header = Header::peek(frame).ok()?;
                tracing::warn!(smsc = %self.settings.addr, command = %header.command_id, error = %err, "undecodable PDU");
                if header.command_id.is_response() {
                    // Fail the request it answers rather than leave it to time out.
                    drop(conn.take_pending(header.sequence_number));
                } else {
                    let code = match err {
                        PduError::UnknownCommand { .. } => status::ESME_RINVCMDID,
                        _ => status::ESME_RINVMSGLEN,
                    };
                    respond(conn, CommandId::GENERIC_NACK, code, header.sequence_number, Body::GenericNack).await;
                }
                return None;
            }
        };
        if pdu.command_id.is_response() {
            // generic_nack answers the request it names, like any response.
            if let Some(waiter) = conn.take_pending(pdu.sequence_number) {
                let _ = waiter.send(pdu);
            }
            return None;
        }
        match pdu.command_id {
            CommandId::ENQUIRE_LINK => {
                respond(conn, CommandId::ENQUIRE_LINK_RESP, 0, pdu.sequence_number, Body::EnquireLinkResp).await;
            }
            CommandId::DELIVER_SM if self.settings.bind.can_receive() => {
                let responder =
                    Responder { out: conn.out.clone(), sequence_number: pdu.sequence_number, tasks: tasks.clone() };
                handler.on_deliver(pdu, responder).await;
            }
            CommandId::UNBIND => {
                respond(conn, CommandId::UNBIND_RESP, 0, pdu.sequence_number, Body::UnbindResp).await;
                return Some(LinkError::Unbound);
            }
            _ => {
                respond(conn, CommandId::GENERIC_NACK, status::ESME_RINVCMDID, pdu.sequence_number, Body::GenericNack)
                    .await;
            }
        }
        None
    }
}

async fn send_request(conn: &Conn, command_id: CommandId, body: Body, timeout: Duration) -> Result<Pdu, RequestError> {
    let sequence_number = conn.next_sequence();
    let bytes =
        pdu::encode(&Pdu { command_id, command_status: 0, sequence_number, body }).map_err(RequestError::Encode)?;
    let (tx, rx) = oneshot::channel();
    conn.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(sequence_number, tx);
    if conn.out.send(bytes).await.is_err() {
        conn.take_pending(sequence_number);
        return Err(RequestError::ConnectionLost);
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(pdu)) => Ok(pdu),
        Ok(Err(_)) => Err(RequestError::ConnectionLost),
        Err(_) => {
            conn.take_pending(sequence_number);
            Err(RequestError::Timeout(timeout))
        }
    }
}

async fn respond(conn: &Conn, command_id: CommandId, command_status: u32, sequence_number: u32, body: Body) {
    if let Ok(bytes) = pdu::encode(&Pdu { command_id, command_status, sequence_number, body }) {
        let _ = conn.out.send(bytes).await;
    }
}

/// Writes queued frames, flushing whenever the queue runs dry.
async fn write_loop(writer: WriteHalf<BoxLink>, mut rx: mpsc::Receiver<Vec<u8>>, dead: mpsc::Sender<LinkError>) {
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    while let Some(frame) = rx.recv().await {
        let mut result = writer.write_all(&frame).await;
        while result.is_ok() {
            match rx.try_recv() {
                Ok(frame) => result = writer.write_all(&frame).await,
                Err(_) => break,
            }
        }
        if let Err(err) = result.and(writer.flush().await) {
            let _ = dead.try_send(LinkError::Write(err));
            return;
        }
    }
}

/// Reads until one whole PDU is in `buf`, decodes and removes it.
async fn read_one<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Result<Pdu, LinkError> {
    loop {
        if let Some(len) = pdu::frame_len(buf).map_err(LinkError::Unframeable)? {
            let frame: Vec<u8> = buf.drain(..len).collect();
            return pdu::decode(&frame).map_err(LinkError::Undecodable);
        }
        buf.reserve(1024);
        match stream.read_buf(buf).await {
            Ok(0) => return Err(LinkError::Closed),
            Ok(_) => {}
            Err(e) => return Err(LinkError::Read(e)),
        }
    }
}

/// While unbinding, keeps routing responses so `unbind_resp` reaches its waiter; never ends by
/// itself unless the SMSC closes first.
async fn drain_until_unbind_resp(reader: &mut ReadHalf<BoxLink>, buf: &mut Vec<u8>, conn: &Conn) {
    loop {
        while let Ok(Some(len)) = pdu::frame_len(buf) {
            let frame: Vec<u8> = buf.drain(..len).collect();
            if let Ok(pdu) = pdu::decode(&frame)
                && pdu.command_id.is_response()
                && let Some(waiter) = conn.take_pending(pdu.sequence_number)
            {
                let _ = waiter.send(pdu);
            }
        }
        buf.reserve(1024);
        match reader.read_buf(buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn settings(addr: String) -> SessionSettings {
        SessionSettings {
            addr,
            system_id: "agent".to_owned(),
            password: Secret::new("secret".to_owned()),
            system_type: String::new(),
            bind: BindKind::Transceiver,
            window: 4,
            response_timeout: Duration::from_secs(2),
            enquire_link_interval: Duration::from_secs(30),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(1),
            tls: None,
        }
    }

    async fn bind_error(session: &Session) -> LinkError {
        match session.connect_and_bind().await {
            Err(err) => err,
            Ok(_) => panic!("the bind was expected to fail"),
        }
    }

    /// An SMSC that reads one bind and answers it with `command_status`, or hangs up when `None`.
    async fn smsc(answer: Option<u32>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut buf = Vec::new();
            let bind = read_one(&mut stream, &mut buf).await.expect("a bind");
            let Some(command_status) = answer else { return };
            let resp = Pdu {
                command_id: bind.command_id.response(),
                command_status,
                sequence_number: bind.sequence_number,
                body: Body::BindResp { system_id: "smsc".to_owned(), tlvs: Vec::new() },
            };
            stream.write_all(&pdu::encode(&resp).expect("encodable")).await.expect("write");
            let _ = stream.read_buf(&mut buf).await;
        });
        addr
    }

    #[tokio::test]
    async fn a_bind_is_refused_closed_or_unreachable_with_its_own_error_and_text() {
        let session = Session::new(settings(smsc(Some(status::ESME_RBINDFAIL)).await));
        let err = bind_error(&session).await;
        assert!(matches!(err, LinkError::BindRefused { status: status::ESME_RBINDFAIL }), "{err:?}");
        assert_eq!(err.to_string(), "bind refused with status 0xd");

        let session = Session::new(settings(smsc(None).await));
        let err = bind_error(&session).await;
        assert!(matches!(err, LinkError::Closed), "{err:?}");
        assert_eq!(err.to_string(), "the SMSC closed the connection");

        let port = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr").port();
        let session = Session::new(settings(format!("127.0.0.1:{port}")));
        let err = bind_error(&session).await;
        assert!(matches!(err, LinkError::Connect(_)), "{err:?}");
        assert!(err.to_string().starts_with("connect failed: "), "{err}");

        let session = Session::new(settings(smsc(Some(status::ESME_ROK)).await));
        assert!(session.connect_and_bind().await.is_ok(), "bound");
    }
}

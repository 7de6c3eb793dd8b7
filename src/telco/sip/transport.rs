//! SIP transports (RFC 3261 §18): one UDP socket and one TCP listener on the same address, and
//! the TCP connections, accepted or opened towards the trunk. Received messages are parsed and
//! handed to the UA core with the [`Peer`] they came from; the core sends bytes to a peer with
//! [`Transport::send`], which never waits: UDP datagrams go out at once (a full socket buffer
//! drops the datagram, the transaction layer retransmits), and each TCP connection has a writer
//! task fed through a bounded queue.
//!
//! Responses go back where the request came from: to the datagram's source address (what
//! `rport`, RFC 3581, asks for, and what a NATed trunk needs), or on the same TCP connection.
//!
//! The short-lived tasks behind [`SipTransport::send`] (a deferred datagram, a TCP connect) and
//! each connection's reader and writer belong to the transport's task set, which the UA core
//! joins with [`SipTransport::close`] after its last message went out.
//!
//! What this module must not do: interpret a message beyond parsing it, or keep SIP state.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::message::{Framing, MAX_BODY_LEN, MAX_HEADER_LEN, Message, frame_len, keepalive_len};
use super::transaction::{Peer, Transport as Kind};
use crate::tasks::TaskSet;

/// Received messages queued towards the core at most.
pub const INBOUND_QUEUE: usize = 4096;
/// Messages queued per TCP connection at most.
const WRITE_QUEUE: usize = 256;
/// Datagrams waiting for the UDP socket to become writable at most; beyond it one is dropped
/// (SIP over UDP retransmits) rather than queued without bound.
const UDP_DEFERRED: usize = 1024;
/// TCP connections held at most (accepted and opened).
const MAX_CONNECTIONS: usize = 1024;
/// A TCP connect to the trunk gives up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A TCP connection silent this long is closed. Longer than a registration refresh (75 % of
/// an hour) and a session refresh (half of 30 min), so connections carrying them stay up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3 * 3600);
/// How long [`SipTransport::close`] waits for connections and sends in flight before aborting
/// them.
const CLOSE_DRAIN: Duration = Duration::from_secs(2);

/// One received message and where it came from.
#[derive(Debug)]
pub struct Inbound {
    pub message: Message,
    pub from: Peer,
}

pub struct SipTransport {
    udp: Arc<UdpSocket>,
    local: SocketAddr,
    connections: Mutex<HashMap<SocketAddr, mpsc::Sender<Bytes>>>,
    inbound: mpsc::Sender<Inbound>,
    stop: watch::Receiver<bool>,
    /// Datagrams waiting for the socket to become writable.
    deferred: Arc<AtomicUsize>,
    /// Deferred datagrams, TCP connects, and each connection's reader and writer.
    tasks: TaskSet,
}

impl std::fmt::Debug for SipTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipTransport").field("local", &self.local).finish_non_exhaustive()
    }
}

impl SipTransport {
    /// Binds UDP and TCP on `listen` (port 0: one free port for both) and starts the receivers.
    pub async fn bind(
        listen: SocketAddr,
        inbound: mpsc::Sender<Inbound>,
        stop: watch::Receiver<bool>,
    ) -> io::Result<(Arc<Self>, Vec<JoinHandle<()>>)> {
        let (udp, tcp) = bind_pair(listen).await?;
        let local = udp.local_addr()?;
        let this = Arc::new(Self {
            udp: Arc::new(udp),
            local,
            connections: Mutex::new(HashMap::new()),
            inbound,
            stop,
            deferred: Arc::new(AtomicUsize::new(0)),
            tasks: TaskSet::new("sip transport"),
        });
        let tasks = vec![tokio::spawn(this.clone().udp_loop()), tokio::spawn(this.clone().accept_loop(tcp))];
        Ok((this, tasks))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Joins the transport's tasks once the stop signal was given and the last message was
    /// handed over: readers end on the signal, writers once their queue is written, and what
    /// still runs after [`CLOSE_DRAIN`] is aborted. Later sends over TCP or to a full socket
    /// are dropped.
    pub async fn close(&self) {
        self.tasks.join_within(CLOSE_DRAIN).await;
    }

    /// Sends one message's bytes; never waits. Over TCP without a connection to `to`, one is
    /// opened (the bytes go once it is up).
    pub fn send(self: &Arc<Self>, to: Peer, bytes: Bytes) {
        match to.transport {
            Kind::Udp => {
                match self.udp.try_send_to(&bytes, to.addr) {
                    Ok(_) => {}
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        // Not writable right now (a full buffer): send when it is, a bounded number.
                        if self.deferred.fetch_add(1, Ordering::Relaxed) >= UDP_DEFERRED {
                            self.deferred.fetch_sub(1, Ordering::Relaxed);
                            tracing::debug!(peer = %to.addr, "SIP datagram dropped: send buffer full");
                            return;
                        }
                        let (udp, deferred) = (self.udp.clone(), self.deferred.clone());
                        let sent = self.tasks.spawn(async move {
                            let _ = udp.send_to(&bytes, to.addr).await;
                            deferred.fetch_sub(1, Ordering::Relaxed);
                        });
                        if sent.is_err() {
                            self.deferred.fetch_sub(1, Ordering::Relaxed);
                            tracing::debug!(peer = %to.addr, "SIP datagram dropped: the transport is closed");
                        }
                    }
                    Err(err) => tracing::debug!(peer = %to.addr, error = %err, "SIP datagram not sent"),
                }
            }
            Kind::Tcp => {
                let existing = self.lock().get(&to.addr).cloned();
                match existing {
                    Some(tx) => {
                        if tx.try_send(bytes).is_err() {
                            tracing::debug!(peer = %to.addr, "SIP connection queue full or closed; message dropped");
                        }
                    }
                    None => {
                        if self.tasks.spawn(self.clone().connect(to.addr, bytes)).is_err() {
                            tracing::debug!(peer = %to.addr, "SIP message dropped: the transport is closed");
                        }
                    }
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Bytes>>> {
        self.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn udp_loop(self: Arc<Self>) {
        let mut buf = vec![0u8; 65_535];
        let mut stop = self.stop.clone();
        loop {
            let (len, from) = tokio::select! {
                r = self.udp.recv_from(&mut buf) => match r {
                    Ok(v) => v,
                    Err(err) => {
                        // ICMP port unreachable surfaces here on some systems; keep serving.
                        tracing::debug!(error = %err, "SIP UDP receive error");
                        continue;
                    }
                },
                _ = stop.changed() => return,
            };
            let datagram = &buf[..len];
            if keepalive_len(datagram) == len {
                continue;
            }
            match Message::parse(datagram, Framing::Datagram) {
                Ok(message) => {
                    let peer = Peer { addr: from, transport: Kind::Udp };
                    if self.inbound.try_send(Inbound { message, from: peer }).is_err() {
                        // Overloaded: the sender retransmits, which is the right back-pressure.
                        tracing::warn!("SIP inbound queue full; datagram dropped");
                    }
                }
                Err(err) => tracing::debug!(peer = %from, error = %err, "unparseable SIP datagram ignored"),
            }
        }
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let mut stop = self.stop.clone();
        loop {
            let (stream, from) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(v) => v,
                    Err(err) => {
                        tracing::warn!(error = %err, "SIP TCP accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.changed() => return,
            };
            if self.lock().len() >= MAX_CONNECTIONS {
                tracing::warn!(peer = %from, "SIP TCP connection refused: too many connections");
                continue;
            }
            let _ = stream.set_nodelay(true);
            self.clone().adopt(stream, from, None);
        }
    }

    async fn connect(self: Arc<Self>, to: SocketAddr, first: Bytes) {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                self.adopt(stream, to, Some(first));
            }
            Ok(Err(err)) => tracing::warn!(peer = %to, error = %err, "SIP TCP connect failed"),
            Err(_) => tracing::warn!(peer = %to, "SIP TCP connect timed out"),
        }
    }

    /// Registers a connection and starts its reader and writer.
    fn adopt(self: Arc<Self>, stream: TcpStream, peer: SocketAddr, first: Option<Bytes>) {
        let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
        if let Some(first) = first {
            let _ = tx.try_send(first);
        }
        {
            let mut connections = self.lock();
            if let Some(existing) = connections.get(&peer)
                && !existing.is_closed()
            {
                // Two connects raced: keep the first, send through it.
                if let Ok(bytes) = rx.try_recv() {
                    let _ = existing.try_send(bytes);
                }
                return;
            }
            connections.insert(peer, tx);
        }
        let (mut read, mut write) = stream.into_split();
        let (tasks, transport) = (self.tasks.clone(), self.clone());
        let writer = tasks.spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if write.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = write.shutdown().await;
        });
        let reader = tasks.spawn(async move {
            let mut buf = BytesMut::with_capacity(4096);
            let mut stop = self.stop.clone();
            'conn: loop {
                let read_once = tokio::time::timeout(IDLE_TIMEOUT, read.read_buf(&mut buf));
                let n = tokio::select! {
                    r = read_once => match r {
                        Ok(Ok(n)) => n,
                        _ => break,
                    },
                    _ = stop.changed() => break,
                };
                if n == 0 {
                    break;
                }
                loop {
                    let skip = keepalive_len(&buf);
                    if skip == buf.len() {
                        // RFC 5626 §3.5.1: a double CRLF ping is answered with a single CRLF.
                        if skip >= 4
                            && let Some(tx) = self.lock().get(&peer)
                        {
                            let _ = tx.try_send(Bytes::from_static(b"\r\n"));
                        }
                        buf.clear();
                        break;
                    }
                    match frame_len(&buf) {
                        Ok(Some(len)) => {
                            let frame = buf.split_to(len);
                            match Message::parse(&frame[skip..], Framing::Stream) {
                                Ok(message) => {
                                    let from = Peer { addr: peer, transport: Kind::Tcp };
                                    if self.inbound.send(Inbound { message, from }).await.is_err() {
                                        break 'conn;
                                    }
                                }
                                Err(err) => {
                                    tracing::debug!(%peer, error = %err, "unparseable SIP message on TCP; closing");
                                    break 'conn;
                                }
                            }
                        }
                        Ok(None) => {
                            if buf.len() > MAX_HEADER_LEN + MAX_BODY_LEN {
                                break 'conn;
                            }
                            break;
                        }
                        Err(err) => {
                            // Framing is lost: the stream cannot be resynchronised (§18.3).
                            tracing::debug!(%peer, error = %err, "SIP framing error on TCP; closing");
                            break 'conn;
                        }
                    }
                }
            }
            self.lock().remove(&peer);
        });
        if writer.and(reader).is_err() {
            // Closed: the futures are dropped and with them the stream; forget the connection.
            tracing::debug!(%peer, "SIP connection dropped: the transport is closed");
            transport.lock().remove(&peer);
        }
    }
}

/// Receive buffer asked for on the SIP UDP socket: a burst of set-ups (three responses of
/// about 1 KB per call) must not overflow the kernel's default 208 KB before the core reads it.
/// The kernel caps it at `net.core.rmem_max`.
const UDP_RECV_BUFFER: usize = 4 << 20;

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if let Err(err) = socket.set_recv_buffer_size(UDP_RECV_BUFFER) {
        tracing::debug!(error = %err, "SIP receive buffer left at the kernel default");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// UDP and TCP on the same address; with port 0, a port free for both.
async fn bind_pair(listen: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    if listen.port() != 0 {
        let udp = udp_socket(listen)?;
        let tcp = TcpListener::bind(listen).await?;
        return Ok((udp, tcp));
    }
    let mut last = None;
    for _ in 0..32 {
        let udp = udp_socket(listen)?;
        let addr = udp.local_addr()?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

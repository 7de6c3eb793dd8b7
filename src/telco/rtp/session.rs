//! One call's RTP media session: the UDP socket, our SSRC, sequence numbers and timestamps, and
//! the translation between RTP packets and the leg's [`MediaFrame`]s.
//!
//! - In: packets of the negotiated audio payload type become frames for the call's jitter
//!   buffer (which reorders and conceals; this task does neither); RFC 4733 telephone-events
//!   become [`LegEvent::Dtmf`], once per event; comfort noise and unknown types are dropped.
//! - Out: every frame the call task sends (one per 20 ms tick of its monotonic clock, silence
//!   included, so the far end hears comfort silence rather than nothing) goes out as one packet;
//!   while a DTMF digit is being sent its telephone-event packets take the audio's place.
//! - Symmetric RTP (RFC 4961): we send from the port we receive on, and latch to the source of
//!   the first valid packet after each (re)negotiation, so a far end behind NAT is reached where
//!   its packets come from rather than where its SDP says.
//!
//! What this module must not do: pace (the call's clock does), decode audio, or block.

use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::dtmf::{DtmfReceiver, DtmfSender};
use super::packet::{Rtp, TelephoneEvent};
use crate::telco::voice::{G711_FRAME, LegEvent, MediaFrame};

/// Payload type of comfort noise (RFC 3389), ignored.
const CN_PAYLOAD_TYPE: u8 = 13;
/// Largest RTP datagram read.
const MAX_PACKET: usize = 1500;
/// Digits queued for sending at most.
pub const DTMF_QUEUE: usize = 32;

/// Where and how to send, from the offer/answer; `None` until the far end's SDP is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteMedia {
    pub addr: SocketAddr,
    pub payload_type: u8,
    pub telephone_event_pt: Option<u8>,
    /// False while the far end holds the call (sendonly/inactive from them): we stay silent.
    pub send: bool,
}

/// Counters of one session, read when it ends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MediaStats {
    pub packets_in: u64,
    pub packets_out: u64,
    pub dropped_in: u64,
}

/// The channels a session is driven by.
pub struct MediaChannels {
    /// Frames towards the call's jitter buffer.
    pub to_call: mpsc::Sender<MediaFrame>,
    /// Frames from the call, one per tick.
    pub from_call: mpsc::Receiver<MediaFrame>,
    /// DTMF detected from the far end.
    pub events: mpsc::Sender<LegEvent>,
    /// The far end's address and formats; updated on re-INVITE.
    pub remote: watch::Receiver<Option<RemoteMedia>>,
    /// Digits to send.
    pub dtmf: mpsc::Receiver<char>,
}

/// Runs the session until the call drops its frame sender or `remote` is dropped.
pub async fn run(socket: UdpSocket, mut ch: MediaChannels) -> MediaStats {
    let mut stats = MediaStats::default();
    let mut buf = [0u8; MAX_PACKET];
    let mut out = [0u8; MAX_PACKET];
    let ssrc: u32 = rand::random();
    let mut seq: u16 = rand::random();
    let mut timestamp: u32 = rand::random();
    let mut remote = *ch.remote.borrow_and_update();
    // Where packets go: the SDP address until a packet from the far end says otherwise.
    let mut send_to = remote.map(|r| r.addr);
    let mut latched = false;
    let mut receiver = DtmfReceiver::new();
    let mut sender = DtmfSender::new();
    let mut first_packet = true;
    let epoch = std::time::Instant::now();
    loop {
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let Ok((len, from)) = r else { continue };
                let Some(r) = remote else { continue };
                let Ok(packet) = Rtp::parse(&buf[..len]) else {
                    stats.dropped_in += 1;
                    continue;
                };
                let pt = packet.payload_type;
                if pt == r.payload_type {
                    if !latched {
                        send_to = Some(from);
                        latched = true;
                    }
                    stats.packets_in += 1;
                    if packet.payload.len() != G711_FRAME {
                        // Only 20 ms packets are framed; other ptimes would need re-framing.
                        stats.dropped_in += 1;
                        continue;
                    }
                    let mut payload = [0u8; G711_FRAME];
                    payload.copy_from_slice(packet.payload);
                    let frame = MediaFrame { seq: packet.sequence_number, timestamp: packet.timestamp, payload };
                    if ch.to_call.try_send(frame).is_err() {
                        stats.dropped_in += 1;
                    }
                } else if Some(pt) == r.telephone_event_pt {
                    stats.packets_in += 1;
                    if let Ok(event) = TelephoneEvent::parse(packet.payload)
                        && let Some(d) = receiver.receive(ms_since(epoch), packet.timestamp, event)
                    {
                        let _ = ch.events.try_send(LegEvent::Dtmf { digit: d.digit, duration_ms: d.duration_ms });
                    }
                } else if pt != CN_PAYLOAD_TYPE {
                    stats.dropped_in += 1;
                }
            }
            frame = ch.from_call.recv() => {
                let Some(frame) = frame else { break };
                // The call's tick is ours too: an event whose end packets were lost ends here.
                if let Some(d) = receiver.poll(ms_since(epoch)) {
                    let _ = ch.events.try_send(LegEvent::Dtmf { digit: d.digit, duration_ms: d.duration_ms });
                }
                let Some(r) = remote else { continue };
                let Some(to) = send_to else { continue };
                if !r.send {
                    timestamp = timestamp.wrapping_add(G711_FRAME as u32);
                    continue;
                }
                let written = match (r.telephone_event_pt, sender.next_packet()) {
                    (Some(te), Some((marker, event_ts, payload))) => {
                        let mut p = Rtp::new(te, seq, event_ts, ssrc, &payload);
                        p.marker = marker;
                        p.write_to(&mut out)
                    }
                    _ => {
                        let mut p = Rtp::new(r.payload_type, seq, timestamp, ssrc, &frame.payload);
                        p.marker = first_packet;
                        p.write_to(&mut out)
                    }
                };
                first_packet = false;
                seq = seq.wrapping_add(1);
                timestamp = timestamp.wrapping_add(G711_FRAME as u32);
                if let Ok(n) = written
                    && socket.try_send_to(&out[..n], to).is_ok()
                {
                    stats.packets_out += 1;
                }
            }
            digit = ch.dtmf.recv() => {
                if let Some(digit) = digit {
                    // The event's timestamp is where the audio would have been (RFC 4733 §2.5.1.2).
                    let _ = sender.start(digit, timestamp);
                }
            }
            changed = ch.remote.changed() => {
                if changed.is_err() {
                    break;
                }
                let next = *ch.remote.borrow_and_update();
                if next.map(|r| r.addr) != remote.map(|r| r.addr) {
                    send_to = next.map(|r| r.addr);
                    latched = false;
                }
                remote = next;
            }
        }
    }
    stats
}

fn ms_since(epoch: std::time::Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Binds one media socket from `low..=high` on `ip`, starting at `start` (a rotating cursor
/// spreads calls over the range); even ports only, RTCP's odd neighbour is left free.
pub fn bind_in_range(ip: std::net::IpAddr, low: u16, high: u16, start: u32) -> std::io::Result<UdpSocket> {
    let first = low + (low % 2);
    let count = u32::from((high.saturating_sub(first)) / 2 + 1);
    for i in 0..count {
        let port = first + (((start + i) % count) * 2) as u16;
        if let Ok(socket) = std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
            socket.set_nonblocking(true)?;
            return UdpSocket::from_std(socket);
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free RTP port in the range"))
}

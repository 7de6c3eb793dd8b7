//! One call's RTP media session: the UDP socket, and the translation between RTP packets and the
//! leg's [`MediaFrame`]s.
//!
//! - In: packets of the negotiated audio payload type become frames, with their SSRC, for the
//!   call's jitter buffer (which reorders and conceals; this task does neither); RFC 4733 telephone-events
//!   become [`LegEvent::Dtmf`], once per event; comfort noise and unknown types are dropped.
//! - Out: every frame the call task sends (one per 20 ms tick of its monotonic clock, silence
//!   included, so the far end hears comfort silence rather than nothing) goes out as one packet;
//!   while a DTMF digit is being sent its telephone-event packets take the audio's place. The
//!   SSRC, sequence number and timestamp are the frame's: the call numbers its frames with one
//!   [`super::stream::RtpStream`], so the stream is numbered in one place. A frame not sent (no
//!   far end yet, or held) gives its sequence number back, so the far end sees no loss (RFC 3550
//!   §5.1: one per packet sent), while the timestamp keeps following the clock.
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
use crate::telco::is_public;
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
    /// Digits to send; taken on the next frame from the call.
    pub dtmf: mpsc::Receiver<char>,
}

/// Runs the session until the call drops its frame sender or `remote` is dropped.
pub async fn run(socket: UdpSocket, mut ch: MediaChannels) -> MediaStats {
    let mut stats = MediaStats::default();
    let mut buf = [0u8; MAX_PACKET];
    let mut out = [0u8; MAX_PACKET];
    // Frames numbered by the call but not sent: subtracted from the sequence numbers that follow.
    let mut unsent: u16 = 0;
    let mut remote = *ch.remote.borrow_and_update();
    // Where packets go: the SDP address until a packet from the far end says otherwise.
    let mut send_to = remote.map(|r| r.addr);
    let mut latched: Option<SocketAddr> = None;
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
                // Only the far end's packets: before latching, from the SDP's address (any port,
                // its NAT may rewrite it) or from anywhere when the SDP's address is not public
                // (a far end behind NAT advertising its private address); once latched, from the
                // latched source or the SDP's address. Others are dropped: no injected audio, and
                // our audio never follows a stranger (RTP bleed).
                let expected = from.ip() == r.addr.ip();
                let acceptable = match latched {
                    Some(source) => from == source || expected,
                    None => expected || !is_public(r.addr.ip()),
                };
                if !acceptable {
                    stats.dropped_in += 1;
                    continue;
                }
                let pt = packet.payload_type;
                if pt == r.payload_type {
                    if latched != Some(from) {
                        send_to = Some(from);
                        latched = Some(from);
                    }
                    stats.packets_in += 1;
                    if packet.payload.len() != G711_FRAME {
                        // Only 20 ms packets are framed; other ptimes would need re-framing.
                        stats.dropped_in += 1;
                        continue;
                    }
                    let mut payload = [0u8; G711_FRAME];
                    payload.copy_from_slice(packet.payload);
                    let frame = MediaFrame {
                        ssrc: packet.ssrc,
                        seq: packet.sequence_number,
                        timestamp: packet.timestamp,
                        payload,
                    };
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
                // Digits asked for since the last tick start here: the event's timestamp is where
                // this tick's audio is (RFC 4733 §2.5.1.2).
                while let Ok(digit) = ch.dtmf.try_recv() {
                    let _ = sender.start(digit, frame.timestamp);
                }
                let (Some(r), Some(to)) = (remote, send_to) else {
                    unsent = unsent.wrapping_add(1);
                    continue;
                };
                if !r.send {
                    unsent = unsent.wrapping_add(1);
                    continue;
                }
                let seq = frame.seq.wrapping_sub(unsent);
                let written = match (r.telephone_event_pt, sender.next_packet()) {
                    (Some(te), Some((marker, event_ts, payload))) => {
                        let mut p = Rtp::new(te, seq, event_ts, frame.ssrc, &payload);
                        p.marker = marker;
                        p.write_to(&mut out)
                    }
                    _ => {
                        let mut p = Rtp::new(r.payload_type, seq, frame.timestamp, frame.ssrc, &frame.payload);
                        p.marker = first_packet;
                        p.write_to(&mut out)
                    }
                };
                first_packet = false;
                // A UDP send completes at once; awaiting only covers a socket whose writability
                // the runtime has not seen yet (just bound) or a full send buffer.
                if let Ok(n) = written
                    && socket.send_to(&out[..n], to).await.is_ok()
                {
                    stats.packets_out += 1;
                }
            }
            changed = ch.remote.changed() => {
                if changed.is_err() {
                    break;
                }
                let next = *ch.remote.borrow_and_update();
                if next.map(|r| r.addr) != remote.map(|r| r.addr) {
                    send_to = next.map(|r| r.addr);
                    latched = None;
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
        let port = first + ((start.wrapping_add(i) % count) * 2) as u16;
        if let Ok(socket) = std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
            socket.set_nonblocking(true)?;
            return UdpSocket::from_std(socket);
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free RTP port in the range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telco::rtp::packet::TELEPHONE_EVENT_LEN;
    use crate::telco::rtp::stream::RtpStream;
    use std::time::Duration;

    struct Running {
        local: SocketAddr,
        to_session: mpsc::Sender<MediaFrame>,
        from_session: mpsc::Receiver<MediaFrame>,
        events: mpsc::Receiver<LegEvent>,
        _remote: watch::Sender<Option<RemoteMedia>>,
        dtmf: mpsc::Sender<char>,
    }

    async fn start(remote: Option<RemoteMedia>) -> Running {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let local = socket.local_addr().expect("addr");
        let (to_call, from_session) = mpsc::channel(64);
        let (to_session, from_call) = mpsc::channel(64);
        let (events_tx, events) = mpsc::channel(64);
        let (remote_tx, remote_rx) = watch::channel(remote);
        let (dtmf, dtmf_rx) = mpsc::channel(8);
        let channels = MediaChannels { to_call, from_call, events: events_tx, remote: remote_rx, dtmf: dtmf_rx };
        tokio::spawn(run(socket, channels));
        Running { local, to_session, from_session, events, _remote: remote_tx, dtmf }
    }

    /// The call's next frame of `stream`, filled with `fill`.
    fn frame(stream: &mut RtpStream, fill: u8) -> MediaFrame {
        let stamp = stream.next_packet(G711_FRAME as u32);
        MediaFrame {
            ssrc: stamp.ssrc,
            seq: stamp.sequence_number,
            timestamp: stamp.timestamp,
            payload: [fill; G711_FRAME],
        }
    }

    async fn recv(socket: &UdpSocket) -> Vec<u8> {
        let mut buf = [0u8; MAX_PACKET];
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
            .await
            .expect("a packet in time")
            .expect("recv");
        buf[..n].to_vec()
    }

    #[tokio::test]
    async fn sends_to_the_sdp_address_then_latches_to_the_observed_source() {
        let sdp_peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let nat_peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let remote = RemoteMedia {
            addr: sdp_peer.local_addr().expect("addr"),
            payload_type: 8,
            telephone_event_pt: Some(101),
            send: true,
        };
        let mut s = start(Some(remote)).await;
        let mut stream = RtpStream::new(0x5EED_0001, 65_535, 4000);
        s.to_session.send(frame(&mut stream, 0x55)).await.expect("send");
        let first = recv(&sdp_peer).await;
        let p = Rtp::parse(&first).expect("rtp");
        assert_eq!((p.payload_type, p.marker, p.payload), (8, true, &[0x55u8; G711_FRAME][..]));
        assert_eq!((p.ssrc, p.sequence_number, p.timestamp), (0x5EED_0001, 65_535, 4000), "as the call numbered it");
        // The far end's packets come from elsewhere (NAT): they reach the call, and we answer there.
        let mut out = [0u8; MAX_PACKET];
        let n = Rtp::new(8, 7, 1600, 42, &[0x11; G711_FRAME]).write_to(&mut out).expect("write");
        nat_peer.send_to(&out[..n], s.local).await.expect("send");
        let got = tokio::time::timeout(Duration::from_secs(2), s.from_session.recv()).await.expect("in time");
        assert_eq!(got.map(|f| (f.seq, f.timestamp, f.payload[0])), Some((7, 1600, 0x11)));
        s.to_session.send(frame(&mut stream, 0x66)).await.expect("send");
        let second = recv(&nat_peer).await;
        let q = Rtp::parse(&second).expect("rtp");
        assert_eq!((q.sequence_number, q.timestamp), (p.sequence_number.wrapping_add(1), p.timestamp + 160));
        assert!(!q.marker);
        assert_eq!(q.ssrc, p.ssrc);
        // Other payload types and garbage are dropped, not passed on.
        let n = Rtp::new(0, 8, 1760, 42, &[0x22; G711_FRAME]).write_to(&mut out).expect("write");
        nat_peer.send_to(&out[..n], s.local).await.expect("send");
        nat_peer.send_to(b"not rtp", s.local).await.expect("send");
        // A stranger (another address) is ignored: its audio is not passed on, ours does not follow it.
        let stranger = UdpSocket::bind("127.0.0.2:0").await.expect("bind 127.0.0.2");
        let n = Rtp::new(8, 50, 9000, 77, &[0x44; G711_FRAME]).write_to(&mut out).expect("write");
        stranger.send_to(&out[..n], s.local).await.expect("send");
        // After them, the next audio packet is the next one passed on.
        let n = Rtp::new(8, 9, 1920, 42, &[0x33; G711_FRAME]).write_to(&mut out).expect("write");
        nat_peer.send_to(&out[..n], s.local).await.expect("send");
        let got = tokio::time::timeout(Duration::from_secs(2), s.from_session.recv()).await.expect("in time");
        assert_eq!(got.map(|f| f.seq), Some(9), "PT 0 and garbage were dropped");
    }

    #[tokio::test]
    async fn dtmf_both_ways_once_per_event() {
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let remote = RemoteMedia {
            addr: peer.local_addr().expect("addr"),
            payload_type: 0,
            telephone_event_pt: Some(101),
            send: true,
        };
        let mut s = start(Some(remote)).await;
        let mut stream = RtpStream::random();
        // In: an event of digit 5 whose end packet comes three times.
        let mut out = [0u8; MAX_PACKET];
        for (i, (end, duration)) in
            [(false, 160u16), (false, 320), (true, 480), (true, 480), (true, 480)].into_iter().enumerate()
        {
            let payload = TelephoneEvent { event: 5, end, volume: 10, duration }.to_bytes().expect("event");
            let n = Rtp::new(101, 100 + i as u16, 8000, 9, &payload).write_to(&mut out).expect("write");
            peer.send_to(&out[..n], s.local).await.expect("send");
        }
        let event = tokio::time::timeout(Duration::from_secs(2), s.events.recv()).await.expect("in time");
        assert_eq!(event, Some(LegEvent::Dtmf { digit: '5', duration_ms: 60 }));
        // Out: a digit replaces the audio of the next ticks with telephone-events.
        s.dtmf.send('#').await.expect("send");
        let mut events = Vec::new();
        for _ in 0..8 {
            s.to_session.send(frame(&mut stream, 0xFF)).await.expect("send");
            let bytes = recv(&peer).await;
            let p = Rtp::parse(&bytes).expect("rtp");
            if p.payload_type == 101 {
                assert_eq!(p.payload.len(), TELEPHONE_EVENT_LEN);
                events.push(TelephoneEvent::parse(p.payload).expect("event"));
            }
        }
        assert!(events.len() >= 4, "{events:?}");
        assert!(events.iter().all(|e| e.event == 11), "#");
        assert_eq!(events.iter().filter(|e| e.end).count().min(3), 3, "the end packet three times");
        assert!(s.events.try_recv().is_err(), "the duplicated end packets were reported once");
    }

    #[tokio::test]
    async fn frames_held_back_give_their_sequence_numbers_back() {
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let remote = RemoteMedia {
            addr: peer.local_addr().expect("addr"),
            payload_type: 0,
            telephone_event_pt: None,
            send: true,
        };
        let s = start(Some(remote)).await;
        let mut stream = RtpStream::new(7, 100, 16_000);
        s.to_session.send(frame(&mut stream, 1)).await.expect("send");
        let before = recv(&peer).await;
        // The far end holds the call for three ticks: nothing is sent, the clock goes on.
        s._remote.send_replace(Some(RemoteMedia { send: false, ..remote }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..3 {
            s.to_session.send(frame(&mut stream, 2)).await.expect("send");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        s._remote.send_replace(Some(remote));
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.to_session.send(frame(&mut stream, 3)).await.expect("send");
        let after = recv(&peer).await;
        let (p, q) = (Rtp::parse(&before).expect("rtp"), Rtp::parse(&after).expect("rtp"));
        assert_eq!(q.payload[0], 3, "the held frames were not sent");
        assert_eq!(q.sequence_number, p.sequence_number.wrapping_add(1), "no gap in the sequence");
        assert_eq!(q.timestamp, p.timestamp + 4 * 160, "the timestamp followed the clock");
        assert_eq!(q.ssrc, 7);
    }
}

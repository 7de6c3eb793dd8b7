//! DTMF over RTP (RFC 4733 telephone events), pure: the two state machines between parsed
//! [`TelephoneEvent`] payloads and digits.
//!
//! [`DtmfReceiver`] turns the packets of each event (a start, updates with a growing duration, and
//! usually three copies of the end packet, all with the event's RTP timestamp) into exactly one
//! [`Detected`] digit: at the first end packet, or, when the end packets were lost, when the next
//! event starts, when [`DtmfReceiver::poll`] sees no packet for [`DEFAULT_TIMEOUT_MS`], or at
//! [`DtmfReceiver::flush`]. Events are told apart by their timestamp alone, so senders that leave
//! the marker bit clear work as well as those that set it. An event held longer than its 16-bit
//! duration field allows (8.19 s) continues under a new timestamp (§2.5.1.3) and is reported once
//! per segment.
//!
//! [`DtmfSender`] turns digits into the payloads to send, one per 20 ms tick: the first marked,
//! all with the timestamp of the event's first tick, the duration growing by 160 (20 ms at
//! 8000 Hz) per packet, the last sent three times with the end bit (§2.5.1.4). Further digits wait
//! in a bounded queue and follow with a [`GAP_TICKS`] pause between events.
//!
//! Both use the `telephone-event/8000` clock ([`CLOCK_RATE`]), which is also G.711's and, by
//! RFC 3551's quirk, G.722's RTP clock.
//!
//! What this module must not do: own a socket, read a clock (time comes in as `now_ms` or as
//! calls per tick), allocate per packet, pick payload types, sequence numbers or SSRCs, or detect
//! in-band DTMF tones in audio.

use super::packet::TelephoneEvent;

/// The `telephone-event` RTP clock rate these state machines assume.
pub const CLOCK_RATE: u32 = 8000;
/// Timestamp units per 20 ms tick at [`CLOCK_RATE`].
pub const TICK_UNITS: u16 = 160;
/// Milliseconds per tick, the packetisation interval of the sender.
pub const TICK_MS: u32 = 20;
/// A digit's length when the caller does not choose one.
pub const DEFAULT_DURATION_MS: u32 = 100;
/// The shortest event the sender accepts (ITU-T Q.24 receivers need 40 ms of tone).
pub const MIN_DURATION_MS: u32 = 40;
/// The longest event the sender accepts: the 16-bit duration field holds 8.19 s at 8000 Hz.
pub const MAX_DURATION_MS: u32 = 8000;
/// -10 dBm0, what most endpoints send.
pub const DEFAULT_VOLUME: u8 = 10;
/// Copies of the end packet (RFC 4733 §2.5.1.4 recommends three).
pub const END_REPEATS: u8 = 3;
/// Digits the sender holds beyond the one it is sending.
pub const QUEUE_CAPACITY: usize = 32;
/// Silent ticks after an event's last end packet before the next event starts.
pub const GAP_TICKS: u8 = 2;
/// How long an event may go without packets before the receiver reports it as ended.
pub const DEFAULT_TIMEOUT_MS: u64 = 300;
/// Timestamps of reported events the receiver remembers, to ignore their late copies.
const RECENT: usize = 4;

/// A digit the receiver saw, and for how long it was held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    /// `0-9`, `*`, `#` or `A-D`.
    pub digit: char,
    /// The longest duration any of its packets announced, in milliseconds.
    pub duration_ms: u32,
}

/// Why the sender refused a digit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    #[error("{digit:?} is not a DTMF digit (0-9, *, #, A-D)")]
    NotADigit { digit: char },
    #[error("a {duration_ms} ms event is outside {MIN_DURATION_MS}..={MAX_DURATION_MS} ms")]
    BadDuration { duration_ms: u32 },
    #[error("volume {volume} does not fit in 6 bits")]
    BadVolume { volume: u8 },
    #[error("{QUEUE_CAPACITY} digits are already waiting to be sent")]
    QueueFull,
}

/// The event the receiver is following.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    timestamp: u32,
    digit: char,
    /// In timestamp units, the largest seen (packets may arrive out of order).
    duration: u16,
    last_packet_ms: u64,
    /// An end packet arrived.
    ended: bool,
    /// Returned to the caller already; later packets with its timestamp are copies.
    reported: bool,
}

impl Tracked {
    fn detected(&self) -> Detected {
        Detected { digit: self.digit, duration_ms: u32::from(self.duration) * 1000 / CLOCK_RATE }
    }
}

/// Received telephone events to digits, each reported once. One per inbound RTP stream; call
/// [`reset`](Self::reset) when its SSRC changes.
///
/// Feed it every telephone-event packet with [`receive`](Self::receive) and call
/// [`poll`](Self::poll) once per tick; each returns at most one digit. A digit is never reported
/// twice and, as long as `poll` keeps being called, never lost: when one packet completes two
/// events (the previous event's end packets were lost and the new one's first surviving packet is
/// already an end), the second is returned by the next `receive` or `poll`.
#[derive(Debug, Clone)]
pub struct DtmfReceiver {
    current: Option<Tracked>,
    /// Timestamps of earlier reported events, a ring.
    recent: [Option<u32>; RECENT],
    recent_next: usize,
    timeout_ms: u64,
}

impl Default for DtmfReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfReceiver {
    pub const fn new() -> Self {
        Self::with_timeout_ms(DEFAULT_TIMEOUT_MS)
    }

    /// A receiver that ends a silent event after `timeout_ms` instead of [`DEFAULT_TIMEOUT_MS`].
    pub const fn with_timeout_ms(timeout_ms: u64) -> Self {
        Self { current: None, recent: [None; RECENT], recent_next: 0, timeout_ms }
    }

    /// Forgets every event, as for a new stream.
    pub fn reset(&mut self) {
        *self = Self::with_timeout_ms(self.timeout_ms);
    }

    /// One received telephone-event packet: its RTP `timestamp` and payload, at `now_ms` on any
    /// monotonic clock of the caller's. Returns a digit when this packet completes one (its first
    /// end packet), or when it starts a new event while the previous one never got an end packet.
    /// Events other than the 16 DTMF digits (flash, …) are ignored. The marker bit is not needed.
    pub fn receive(&mut self, now_ms: u64, timestamp: u32, event: TelephoneEvent) -> Option<Detected> {
        let digit = event.digit()?;
        if let Some(current) = self.current.as_mut()
            && current.timestamp == timestamp
        {
            current.last_packet_ms = now_ms;
            current.duration = current.duration.max(event.duration);
            current.ended |= event.end;
            if current.ended && !current.reported {
                current.reported = true;
                return Some(current.detected());
            }
            return None;
        }
        if self.recent.contains(&Some(timestamp)) {
            // A late copy of an event that is over and reported.
            return None;
        }
        // A new event: whatever the previous one was doing, it is over.
        let unreported = self.current.take().and_then(|previous| {
            self.recent[self.recent_next] = Some(previous.timestamp);
            self.recent_next = (self.recent_next + 1) % RECENT;
            (!previous.reported).then(|| previous.detected())
        });
        let mut next = Tracked {
            timestamp,
            digit,
            duration: event.duration,
            last_packet_ms: now_ms,
            ended: event.end,
            reported: false,
        };
        let result = match unreported {
            Some(previous) => Some(previous),
            None if next.ended => {
                next.reported = true;
                Some(next.detected())
            }
            None => None,
        };
        self.current = Some(next);
        result
    }

    /// Once per tick: reports an event that ended but could not be reported yet, or one that has
    /// had no packet for the timeout (its end packets were lost).
    pub fn poll(&mut self, now_ms: u64) -> Option<Detected> {
        let current = self.current.as_mut()?;
        let silent_ms = now_ms.saturating_sub(current.last_packet_ms);
        if current.reported || !(current.ended || silent_ms >= self.timeout_ms) {
            return None;
        }
        current.reported = true;
        Some(current.detected())
    }

    /// Reports the event in progress, if any, as ended: at the end of the call or stream.
    pub fn flush(&mut self) -> Option<Detected> {
        let current = self.current.as_mut()?;
        if current.reported {
            return None;
        }
        current.reported = true;
        Some(current.detected())
    }
}

/// A digit waiting to be sent, validated.
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    event: u8,
    /// In timestamp units, at most 64000.
    duration: u16,
    volume: u8,
}

/// The event being sent.
#[derive(Debug, Clone, Copy)]
struct Sending {
    pending: Pending,
    timestamp: u32,
    /// The duration the last packet announced.
    elapsed: u16,
    ends_sent: u8,
}

/// Digits to telephone-event payloads, one per 20 ms tick. One per outbound RTP stream.
///
/// [`start`](Self::start) queues a digit; [`next_packet`](Self::next_packet), called once per
/// tick, returns the payload to send in that tick, if any, with its marker bit and RTP timestamp.
/// While it sends, the sender keeps the stream's clock itself (160 units per tick from the
/// timestamp given to the `start` that found it idle), so queued digits get the timestamps of the
/// ticks they start in.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    queue: [Pending; QUEUE_CAPACITY],
    head: usize,
    queued: usize,
    active: Option<Sending>,
    /// Silent ticks left before the next event may start.
    gap: u8,
    /// The RTP timestamp of the tick the next `next_packet` call stands for.
    clock: u32,
}

impl Default for DtmfSender {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfSender {
    pub const fn new() -> Self {
        Self {
            queue: [Pending { event: 0, duration: 0, volume: 0 }; QUEUE_CAPACITY],
            head: 0,
            queued: 0,
            active: None,
            gap: 0,
            clock: 0,
        }
    }

    /// Drops the event in progress (without its end packets) and every queued digit.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Sends `digit` for [`DEFAULT_DURATION_MS`] at [`DEFAULT_VOLUME`]; see [`start_with`](Self::start_with).
    pub fn start(&mut self, digit: char, timestamp: u32) -> Result<(), DtmfError> {
        self.start_with(digit, timestamp, DEFAULT_DURATION_MS, DEFAULT_VOLUME)
    }

    /// Queues `digit` (`0-9 * # A-D`, lower case accepted) for `duration_ms` at `volume` -dBm0.
    /// `timestamp` is the RTP timestamp of the current tick; it is used when the sender is idle,
    /// otherwise the digit follows the ones before it. Nothing is queued on error.
    pub fn start_with(&mut self, digit: char, timestamp: u32, duration_ms: u32, volume: u8) -> Result<(), DtmfError> {
        let event = TelephoneEvent::event_for_digit(digit).ok_or(DtmfError::NotADigit { digit })?;
        if !(MIN_DURATION_MS..=MAX_DURATION_MS).contains(&duration_ms) {
            return Err(DtmfError::BadDuration { duration_ms });
        }
        if volume > 0x3F {
            return Err(DtmfError::BadVolume { volume });
        }
        if self.queued == QUEUE_CAPACITY {
            return Err(DtmfError::QueueFull);
        }
        if !self.is_active() {
            self.clock = timestamp;
        }
        // At most 8000 ms * 8 = 64000 units, which fits.
        let duration = u16::try_from(duration_ms * CLOCK_RATE / 1000).unwrap_or(u16::MAX);
        self.queue[(self.head + self.queued) % QUEUE_CAPACITY] = Pending { event, duration, volume };
        self.queued += 1;
        Ok(())
    }

    /// Whether an event is being sent or digits are waiting.
    pub fn is_active(&self) -> bool {
        self.active.is_some() || self.queued > 0
    }

    /// Digits waiting behind the one being sent.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Call once per 20 ms tick: the packet to send in this tick, as (marker, RTP timestamp,
    /// telephone-event payload), or `None` when idle or pausing between events.
    pub fn next_packet(&mut self) -> Option<(bool, u32, [u8; 4])> {
        let tick = self.clock;
        self.clock = self.clock.wrapping_add(u32::from(TICK_UNITS));
        if self.active.is_none() {
            if self.gap > 0 {
                self.gap -= 1;
                return None;
            }
            let pending = self.pop()?;
            self.active = Some(Sending { pending, timestamp: tick, elapsed: 0, ends_sent: 0 });
        }
        let sending = self.active.as_mut()?;
        let marker = sending.elapsed == 0;
        sending.elapsed = sending.elapsed.saturating_add(TICK_UNITS).min(sending.pending.duration);
        let end = sending.elapsed >= sending.pending.duration;
        let payload = TelephoneEvent {
            event: sending.pending.event,
            end,
            volume: sending.pending.volume,
            duration: sending.elapsed,
        };
        let timestamp = sending.timestamp;
        if end {
            sending.ends_sent += 1;
            if sending.ends_sent >= END_REPEATS {
                self.active = None;
                self.gap = GAP_TICKS;
            }
        }
        // The volume was checked in `start_with`, so this cannot fail; if it did, send nothing.
        let bytes = payload.to_bytes().ok()?;
        Some((marker, timestamp, bytes))
    }

    fn pop(&mut self) -> Option<Pending> {
        if self.queued == 0 {
            return None;
        }
        let pending = self.queue[self.head];
        self.head = (self.head + 1) % QUEUE_CAPACITY;
        self.queued -= 1;
        Some(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;

    fn event(digit: char, end: bool, duration: u16) -> TelephoneEvent {
        let event = TelephoneEvent::event_for_digit(digit).expect("a digit");
        TelephoneEvent { event, end, volume: 10, duration }
    }

    /// Runs the sender until idle, returning every tick's output.
    fn drain(sender: &mut DtmfSender) -> Vec<Option<(bool, u32, [u8; 4])>> {
        let mut ticks = Vec::new();
        while sender.is_active() {
            ticks.push(sender.next_packet());
            assert!(ticks.len() < 10_000, "the sender never goes idle");
        }
        ticks
    }

    #[test]
    fn one_digit_is_reported_once_at_its_first_end_packet() {
        let mut rx = DtmfReceiver::new();
        let ts = 48_000;
        assert_eq!(rx.receive(0, ts, event('7', false, 160)), None);
        for (i, d) in [320, 480, 640].into_iter().enumerate() {
            assert_eq!(rx.receive(20 * (i as u64 + 1), ts, event('7', false, d)), None);
        }
        let seven = Some(Detected { digit: '7', duration_ms: 100 });
        assert_eq!(rx.receive(80, ts, event('7', true, 800)), seven);
        assert_eq!(rx.receive(100, ts, event('7', true, 800)), None);
        assert_eq!(rx.receive(120, ts, event('7', true, 800)), None);
        assert_eq!(rx.poll(10_000), None);
        assert_eq!(rx.flush(), None);
    }

    #[test]
    fn lost_end_packets_are_reported_when_the_next_event_starts() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.receive(0, 1000, event('1', false, 160)), None);
        assert_eq!(rx.receive(40, 1000, event('1', false, 480)), None);
        // Reordered: an older update does not shorten the event.
        assert_eq!(rx.receive(41, 1000, event('1', false, 320)), None);
        assert_eq!(rx.receive(200, 2600, event('2', false, 160)), Some(Detected { digit: '1', duration_ms: 60 }));
        assert_eq!(rx.receive(220, 2600, event('2', true, 800)), Some(Detected { digit: '2', duration_ms: 100 }));
        // A straggler of the first event, after the second began, is a copy, not a new event.
        assert_eq!(rx.receive(230, 1000, event('1', true, 800)), None);
    }

    #[test]
    fn a_silent_event_times_out_and_flush_ends_the_last() {
        let mut rx = DtmfReceiver::with_timeout_ms(200);
        assert_eq!(rx.receive(1000, 5, event('#', false, 160)), None);
        assert_eq!(rx.poll(1100), None);
        assert_eq!(rx.receive(1120, 5, event('#', false, 960)), None);
        assert_eq!(rx.poll(1319), None);
        assert_eq!(rx.poll(1320), Some(Detected { digit: '#', duration_ms: 120 }));
        assert_eq!(rx.poll(1340), None);
        // Its end packet, late: already reported.
        assert_eq!(rx.receive(1400, 5, event('#', true, 1600)), None);

        assert_eq!(rx.receive(2000, 9000, event('D', false, 160)), None);
        assert_eq!(rx.flush(), Some(Detected { digit: 'D', duration_ms: 20 }));
        assert_eq!(rx.flush(), None);
        assert_eq!(rx.poll(u64::MAX), None);
        // A clock that went backwards does not underflow.
        assert_eq!(rx.receive(3000, 9500, event('C', false, 160)), None);
        assert_eq!(rx.poll(0), None);
    }

    #[test]
    fn two_events_completed_by_one_packet_come_out_one_per_call() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.receive(0, 100, event('4', false, 320)), None);
        // Everything of '5' but one end packet was lost: '4' first, then '5'.
        assert_eq!(rx.receive(300, 2000, event('5', true, 800)), Some(Detected { digit: '4', duration_ms: 40 }));
        assert_eq!(rx.receive(320, 2000, event('5', true, 800)), Some(Detected { digit: '5', duration_ms: 100 }));
        assert_eq!(rx.receive(340, 2000, event('5', true, 800)), None);

        // The same, with the held digit collected by the next poll.
        assert_eq!(rx.receive(400, 3000, event('6', false, 160)), None);
        assert_eq!(rx.receive(500, 4000, event('8', true, 640)), Some(Detected { digit: '6', duration_ms: 20 }));
        assert_eq!(rx.poll(500), Some(Detected { digit: '8', duration_ms: 80 }));
        assert_eq!(rx.poll(520), None);
        assert_eq!(rx.flush(), None);
    }

    #[test]
    fn events_other_than_digits_are_ignored() {
        let mut rx = DtmfReceiver::new();
        let flash = TelephoneEvent { event: 16, end: true, volume: 10, duration: 800 };
        assert_eq!(rx.receive(0, 10, flash), None);
        assert_eq!(rx.flush(), None);
        assert_eq!(rx.receive(20, 10, event('a', true, 400)), Some(Detected { digit: 'A', duration_ms: 50 }));
        rx.reset();
        // After a reset (new SSRC) the same timestamp is a new event.
        assert_eq!(rx.receive(40, 10, event('B', true, 400)), Some(Detected { digit: 'B', duration_ms: 50 }));
    }

    #[test]
    fn the_sender_follows_rfc_4733() {
        let mut tx = DtmfSender::new();
        assert!(!tx.is_active());
        assert_eq!(tx.next_packet(), None);
        tx.start('5', 1000).expect("a digit");
        assert!(tx.is_active());
        let ticks = drain(&mut tx);
        let expected = [
            (true, 1000, [5, 10, 0x00, 0xA0]),
            (false, 1000, [5, 10, 0x01, 0x40]),
            (false, 1000, [5, 10, 0x01, 0xE0]),
            (false, 1000, [5, 10, 0x02, 0x80]),
            (false, 1000, [5, 0x8A, 0x03, 0x20]),
            (false, 1000, [5, 0x8A, 0x03, 0x20]),
            (false, 1000, [5, 0x8A, 0x03, 0x20]),
        ];
        assert_eq!(ticks, expected.map(Some));
        // The pause after an event, then idle.
        assert_eq!(tx.next_packet(), None);
        assert_eq!(tx.next_packet(), None);
        assert_eq!(tx.next_packet(), None);

        // A length off the 20 ms grid ends on its exact duration; the volume is the caller's.
        tx.start_with('#', 0xFFFF_FF60, 110, 20).expect("valid");
        let ticks: Vec<_> = drain(&mut tx).into_iter().flatten().collect();
        let durations: Vec<_> = ticks.iter().map(|(_, _, p)| u16::from_be_bytes([p[2], p[3]])).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 880, 880, 880]);
        assert!(ticks.iter().all(|&(_, ts, p)| ts == 0xFFFF_FF60 && p[0] == 11 && p[1] & 0x3F == 20));
        let ends: Vec<_> = ticks.iter().map(|(_, _, p)| p[1] & 0x80 != 0).collect();
        assert_eq!(ends, [false, false, false, false, false, true, true, true]);
    }

    #[test]
    fn queued_digits_follow_in_order_with_a_pause() {
        let mut tx = DtmfSender::new();
        for digit in "123".chars() {
            tx.start(digit, 8000).expect("room in the queue");
        }
        assert_eq!(tx.queued(), 3);
        let ticks = drain(&mut tx);
        // 7 packets per digit, 2 silent ticks between digits, none after the last.
        assert_eq!(ticks.len(), 7 + 2 + 7 + 2 + 7);
        assert!(ticks[7..9].iter().all(Option::is_none) && ticks[16..18].iter().all(Option::is_none));
        let starts: Vec<_> =
            ticks.iter().flatten().filter(|(marker, _, _)| *marker).map(|&(_, ts, p)| (ts, p[0])).collect();
        // Each event is stamped with the tick it starts in, 160 units per tick.
        assert_eq!(starts, [(8000, 1), (8000 + 9 * 160, 2), (8000 + 18 * 160, 3)]);
        // Once idle, the next digit takes the caller's timestamp again.
        tx.next_packet();
        tx.next_packet();
        tx.start('9', 123_456).expect("a digit");
        assert_eq!(tx.next_packet().map(|(m, ts, p)| (m, ts, p[0])), Some((true, 123_456, 9)));
    }

    #[test]
    fn the_sender_refuses_bad_digits_and_a_full_queue() {
        let mut tx = DtmfSender::default();
        assert_eq!(tx.start('x', 0), Err(DtmfError::NotADigit { digit: 'x' }));
        assert_eq!(tx.start_with('1', 0, 39, 10), Err(DtmfError::BadDuration { duration_ms: 39 }));
        assert_eq!(tx.start_with('1', 0, 8001, 10), Err(DtmfError::BadDuration { duration_ms: 8001 }));
        assert_eq!(tx.start_with('1', 0, 100, 64), Err(DtmfError::BadVolume { volume: 64 }));
        assert!(!tx.is_active());
        for _ in 0..QUEUE_CAPACITY {
            tx.start('0', 0).expect("room");
        }
        assert_eq!(tx.start('1', 0), Err(DtmfError::QueueFull));
        // Sending the first frees a place.
        assert!(tx.next_packet().is_some());
        assert_eq!(tx.start('1', 0), Ok(()));
        // The longest event fits the 16-bit duration field.
        tx.reset();
        tx.start_with('1', 0, MAX_DURATION_MS, 0).expect("valid");
        let last = drain(&mut tx).into_iter().flatten().last().map(|(_, _, p)| u16::from_be_bytes([p[2], p[3]]));
        assert_eq!(last, Some(64_000));
    }

    #[test]
    fn every_digit_round_trips() {
        const DIGITS: &str = "0123456789*#ABCD";
        let mut tx = DtmfSender::new();
        let mut rx = DtmfReceiver::new();
        for digit in DIGITS.chars() {
            tx.start(digit, 0x1234).expect("room in the queue");
        }
        let mut got = Vec::new();
        for (tick, packet) in drain(&mut tx).into_iter().enumerate() {
            let now_ms = 20 * tick as u64;
            if let Some((_marker, timestamp, payload)) = packet {
                let event = TelephoneEvent::parse(&payload).expect("4 octets");
                got.extend(rx.receive(now_ms, timestamp, event));
            }
            got.extend(rx.poll(now_ms));
        }
        got.extend(rx.flush());
        let expected: Vec<_> = DIGITS.chars().map(|digit| Detected { digit, duration_ms: 100 }).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_round_trip_survives_loss_and_duplication() {
        const DIGITS: &str = "0123456789*#ABCD";
        let mut rng = XorShift(0xD7F1);
        let mut total = 0;
        for _ in 0..200 {
            let mut tx = DtmfSender::new();
            let mut rx = DtmfReceiver::new();
            for digit in DIGITS.chars() {
                tx.start_with(digit, rng.next() as u32, 40 + 20 * rng.below(10) as u32, 10).expect("valid");
            }
            let mut got = String::new();
            let ticks = drain(&mut tx);
            let mut now_ms = 0;
            for (tick, packet) in ticks.iter().enumerate() {
                now_ms = 20 * tick as u64;
                // Each packet: lost 1 in 3, otherwise delivered once or twice.
                if let Some((_, timestamp, payload)) = packet
                    && rng.below(3) != 0
                {
                    let event = TelephoneEvent::parse(payload).expect("4 octets");
                    for _ in 0..=rng.below(2) {
                        got.extend(rx.receive(now_ms, *timestamp, event).map(|d| d.digit));
                    }
                }
                got.extend(rx.poll(now_ms).map(|d| d.digit));
            }
            got.extend(rx.poll(now_ms + DEFAULT_TIMEOUT_MS).map(|d| d.digit));
            // A digit whose every packet was lost is gone; every other arrives once, in order.
            let mut expected = DIGITS.chars().peekable();
            for digit in got.chars() {
                assert!(expected.any(|d| d == digit), "{got} is not an in-order subset of {DIGITS}");
            }
            total += got.len();
        }
        // Losing all of a digit's 7 packets at 1 in 3 happens about once in 2,000 digits.
        assert!(total >= 200 * DIGITS.len() - 8, "{total}");
    }

    #[test]
    fn arbitrary_packets_report_each_event_exactly_once() {
        let mut rng = XorShift(0x4733);
        for round in 0..20u32 {
            let mut rx = DtmfReceiver::with_timeout_ms(100);
            let mut reported = 0usize;
            let mut seen = std::collections::HashSet::new();
            let (mut now_ms, mut newest) = (0u64, 0u32);
            for _ in 0..5_000 {
                now_ms += rng.below(60) as u64;
                // Mostly the newest event, sometimes a straggler of the one before; any end bit,
                // volume and duration, a few non-digit events, a timestamp that wraps.
                newest += u32::from(rng.below(5) == 0);
                let index = newest.saturating_sub(u32::from(rng.below(4) == 0));
                let timestamp = (round << 28).wrapping_add(index.wrapping_mul(0x0100_0321));
                let payload = [rng.below(18) as u8, rng.next() as u8, rng.next() as u8, rng.next() as u8];
                let event = TelephoneEvent::parse(&payload).expect("4 octets");
                if event.digit().is_some() {
                    seen.insert(timestamp);
                }
                reported += usize::from(rx.receive(now_ms, timestamp, event).is_some());
                if rng.below(2) == 0 {
                    reported += usize::from(rx.poll(now_ms).is_some());
                }
            }
            reported += usize::from(rx.poll(u64::MAX).is_some());
            reported += usize::from(rx.flush().is_some());
            assert!(seen.len() > 500, "{}", seen.len());
            assert_eq!(reported, seen.len(), "round {round}");
        }
    }
}

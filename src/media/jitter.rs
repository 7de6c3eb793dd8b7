//! The inbound jitter buffer: a fixed-delay reorder buffer for one RTP stream's 20 ms G.711
//! payloads, keyed by sequence number (wrapping at 65535), drained one frame per 20 ms tick of the
//! call's clock. The only jitter buffer on the path, at the point where network timing becomes the
//! stream's timing (shared/reference/voice-sip-rtp.md §3.2).
//!
//! Playing starts once [`JitterConfig::target_depth`] frames (default 3 = 60 ms) span the buffer,
//! and starts again the same way after an underrun. A gap whose successors have arrived pops as
//! [`Pop::Missing`] (the caller conceals it); a packet for a frame already played or skipped is
//! late and dropped; a copy of a buffered packet is dropped; a new SSRC or a sequence jump beyond
//! the buffer restarts it. Every drop is counted in [`JitterStats`].
//!
//! Capacity is fixed at [`SLOTS`] frames of at most [`MAX_PAYLOAD_BYTES`] octets, allocated with
//! the buffer: inserting copies into a slot, popping borrows it, and neither allocates.
//!
//! What this module must not do: read a clock, decode audio, conceal loss, or parse RTP.

/// Frames the buffer holds: 320 ms, far more than the target depth. A power of two that divides
/// 65536, so `seq % SLOTS` stays continuous across the sequence number's wrap.
pub const SLOTS: usize = 16;
/// One 20 ms G.711 frame: 160 octets (G.722 at 20 ms is the same size).
pub const MAX_PAYLOAD_BYTES: usize = 160;
/// 60 ms of buffering before playing.
pub const DEFAULT_TARGET_DEPTH: usize = 3;
/// How far behind the play position a packet may be and still count as late rather than as a
/// restarted stream (RFC 3550 A.1 uses the same bound, MAX_MISORDER, for its sequence checks).
const MAX_MISORDER: i32 = 100;

/// The buffer's one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Frames buffered before playing starts, 1..=[`SLOTS`] / 2.
    pub target_depth: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self { target_depth: DEFAULT_TARGET_DEPTH }
    }
}

/// A configuration the buffer cannot honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JitterError {
    #[error("target depth {depth} must be between 1 and {max} frames")]
    TargetDepthOutOfRange { depth: usize, max: usize },
}

/// What happened to an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// Buffered for playing.
    Stored,
    /// A copy of a packet already buffered: dropped.
    Duplicate,
    /// Its frame was already played or given up on: dropped.
    Late,
    /// Its payload is larger than a slot: dropped.
    Oversized { len: usize },
    /// The buffer restarted on this packet (now the first of the new stream), dropping what it held.
    Reset(ResetReason),
}

/// Why the buffer restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    SsrcChanged,
    SequenceJump,
}

/// What one tick plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pop<'a> {
    /// The next frame.
    Frame { sequence_number: u16, timestamp: u32, payload: &'a [u8] },
    /// The next frame never arrived but later ones did: conceal it.
    Missing { sequence_number: u16 },
    /// Nothing to play: before the first packet, while filling to the target depth, or after an
    /// underrun. Play silence.
    Empty,
}

/// Counters since the buffer was made (for metrics and the call record).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub stored: u64,
    pub played: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub late: u64,
    pub oversized: u64,
    pub resets: u64,
    pub underruns: u64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    occupied: bool,
    sequence_number: u16,
    timestamp: u32,
    len: usize,
    payload: [u8; MAX_PAYLOAD_BYTES],
}

const EMPTY_SLOT: Slot =
    Slot { occupied: false, sequence_number: 0, timestamp: 0, len: 0, payload: [0; MAX_PAYLOAD_BYTES] };

/// One inbound RTP stream's reorder buffer.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    slots: [Slot; SLOTS],
    target_depth: usize,
    ssrc: Option<u32>,
    /// The sequence number the next pop plays; `None` before the first packet.
    head: Option<u16>,
    /// The furthest sequence number buffered, as a distance from `head` (+1), 0 when empty.
    span: usize,
    /// Filling to the target depth; pops return `Empty` until it is reached.
    filling: bool,
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new(JitterConfig::default()).expect("invariant: the default depth is in range")
    }
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Result<Self, JitterError> {
        let max = SLOTS / 2;
        if config.target_depth == 0 || config.target_depth > max {
            return Err(JitterError::TargetDepthOutOfRange { depth: config.target_depth, max });
        }
        Ok(Self {
            slots: [EMPTY_SLOT; SLOTS],
            target_depth: config.target_depth,
            ssrc: None,
            head: None,
            span: 0,
            filling: true,
            stats: JitterStats::default(),
        })
    }

    /// Offers one packet's payload. `sequence_number`, `timestamp` and `ssrc` are the RTP header's.
    pub fn insert(&mut self, ssrc: u32, sequence_number: u16, timestamp: u32, payload: &[u8]) -> Insert {
        if payload.len() > MAX_PAYLOAD_BYTES {
            self.stats.oversized += 1;
            return Insert::Oversized { len: payload.len() };
        }
        let reset = match (self.ssrc, self.head) {
            (Some(known), _) if known != ssrc => Some(ResetReason::SsrcChanged),
            (_, None) => None,
            (_, Some(head)) => {
                let distance = i32::from(sequence_number.wrapping_sub(head) as i16);
                if (0..SLOTS as i32).contains(&distance) {
                    let slot = &self.slots[usize::from(sequence_number) % SLOTS];
                    if slot.occupied && slot.sequence_number == sequence_number {
                        self.stats.duplicates += 1;
                        return Insert::Duplicate;
                    }
                    self.store(sequence_number, timestamp, payload);
                    self.span = self.span.max(distance as usize + 1);
                    return Insert::Stored;
                }
                if (-MAX_MISORDER..0).contains(&distance) {
                    self.stats.late += 1;
                    return Insert::Late;
                }
                Some(ResetReason::SequenceJump)
            }
        };
        if reset.is_some() {
            self.stats.resets += 1;
            self.slots.iter_mut().for_each(|s| s.occupied = false);
        }
        self.ssrc = Some(ssrc);
        self.head = Some(sequence_number);
        self.span = 1;
        self.filling = true;
        self.store(sequence_number, timestamp, payload);
        reset.map_or(Insert::Stored, Insert::Reset)
    }

    fn store(&mut self, sequence_number: u16, timestamp: u32, payload: &[u8]) {
        let slot = &mut self.slots[usize::from(sequence_number) % SLOTS];
        slot.occupied = true;
        slot.sequence_number = sequence_number;
        slot.timestamp = timestamp;
        slot.len = payload.len();
        slot.payload[..payload.len()].copy_from_slice(payload);
        self.stats.stored += 1;
    }

    /// Takes what this tick plays. Call exactly once per 20 ms.
    pub fn pop(&mut self) -> Pop<'_> {
        let Some(head) = self.head else { return Pop::Empty };
        if self.filling {
            if self.span < self.target_depth {
                return Pop::Empty;
            }
            self.filling = false;
        }
        if self.span == 0 {
            // Nothing at or after the head: an underrun (loss at the tail, or the far end paused).
            // Hold the position and fill up again, so a resumed stream is not taken as late.
            self.filling = true;
            self.stats.underruns += 1;
            return Pop::Empty;
        }
        self.head = Some(head.wrapping_add(1));
        self.span -= 1;
        let index = usize::from(head) % SLOTS;
        let slot = &mut self.slots[index];
        if slot.occupied && slot.sequence_number == head {
            slot.occupied = false;
            self.stats.played += 1;
            let slot = &self.slots[index];
            Pop::Frame { sequence_number: head, timestamp: slot.timestamp, payload: &slot.payload[..slot.len] }
        } else {
            self.stats.missing += 1;
            Pop::Missing { sequence_number: head }
        }
    }

    /// Frames from the play position to the furthest one buffered, gaps included.
    pub fn depth(&self) -> usize {
        self.span
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0x1234_5678;

    /// A payload that names its sequence number, so tests can see which packet came out.
    fn payload(seq: u16) -> [u8; MAX_PAYLOAD_BYTES] {
        let mut p = [0u8; MAX_PAYLOAD_BYTES];
        p[..2].copy_from_slice(&seq.to_be_bytes());
        p[159] = 0xEE;
        p
    }

    fn insert(jb: &mut JitterBuffer, seq: u16) -> Insert {
        jb.insert(SSRC, seq, u32::from(seq).wrapping_mul(160), &payload(seq))
    }

    /// What a pop played, as a short string: "12" for a frame, "?12" for a gap, "-" for nothing.
    fn pop(jb: &mut JitterBuffer) -> String {
        match jb.pop() {
            Pop::Frame { sequence_number, timestamp, payload: p } => {
                assert_eq!(p, &payload(sequence_number)[..]);
                assert_eq!(timestamp, u32::from(sequence_number).wrapping_mul(160));
                sequence_number.to_string()
            }
            Pop::Missing { sequence_number } => format!("?{sequence_number}"),
            Pop::Empty => "-".into(),
        }
    }

    fn pops(jb: &mut JitterBuffer, n: usize) -> Vec<String> {
        (0..n).map(|_| pop(jb)).collect()
    }

    #[test]
    fn in_order_stream_plays_after_the_target_depth() {
        let mut jb = JitterBuffer::default();
        assert_eq!(pop(&mut jb), "-");
        let mut played = Vec::new();
        for seq in 100..110 {
            assert_eq!(insert(&mut jb, seq), Insert::Stored);
            played.push(pop(&mut jb));
        }
        assert_eq!(played, ["-", "-", "100", "101", "102", "103", "104", "105", "106", "107"]);
        assert_eq!(jb.depth(), 2);
        assert_eq!(pops(&mut jb, 3), ["108", "109", "-"]);
        let stats = jb.stats();
        assert_eq!((stats.stored, stats.played, stats.missing, stats.underruns), (10, 10, 0, 1));
    }

    #[test]
    fn reordered_packets_come_out_in_order() {
        let mut jb = JitterBuffer::default();
        for seq in [10, 12, 11, 14, 13, 15] {
            assert_eq!(insert(&mut jb, seq), Insert::Stored);
        }
        assert_eq!(pops(&mut jb, 7), ["10", "11", "12", "13", "14", "15", "-"]);
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut jb = JitterBuffer::default();
        insert(&mut jb, 1);
        assert_eq!(insert(&mut jb, 1), Insert::Duplicate);
        insert(&mut jb, 2);
        insert(&mut jb, 3);
        assert_eq!(insert(&mut jb, 2), Insert::Duplicate);
        assert_eq!(pops(&mut jb, 4), ["1", "2", "3", "-"]);
        assert_eq!(jb.stats().duplicates, 2);
        // Once played, a copy is late rather than a duplicate.
        assert_eq!(insert(&mut jb, 3), Insert::Late);
    }

    #[test]
    fn a_lost_packet_pops_as_missing() {
        let mut jb = JitterBuffer::default();
        for seq in [1, 2, 4, 5, 6] {
            insert(&mut jb, seq);
        }
        assert_eq!(pops(&mut jb, 7), ["1", "2", "?3", "4", "5", "6", "-"]);
        assert_eq!(jb.stats().missing, 1);
    }

    #[test]
    fn a_packet_after_its_turn_is_late() {
        let mut jb = JitterBuffer::default();
        for seq in [1, 2, 4] {
            insert(&mut jb, seq);
        }
        assert_eq!(pops(&mut jb, 3), ["1", "2", "?3"]);
        assert_eq!(insert(&mut jb, 3), Insert::Late);
        assert_eq!(pops(&mut jb, 2), ["4", "-"]);
        assert_eq!(jb.stats().late, 1);
    }

    #[test]
    fn sequence_numbers_wrap_at_65535() {
        let mut jb = JitterBuffer::default();
        for seq in [65533, 65535, 65534, 0, 2, 1, 3] {
            assert_eq!(insert(&mut jb, seq), Insert::Stored, "seq {seq}");
        }
        assert_eq!(pops(&mut jb, 8), ["65533", "65534", "65535", "0", "1", "2", "3", "-"]);
        assert_eq!(insert(&mut jb, 65535), Insert::Late);
        assert_eq!(jb.stats().resets, 0);
    }

    #[test]
    fn a_big_jump_or_a_new_ssrc_restarts_the_buffer() {
        let mut jb = JitterBuffer::default();
        for seq in 1..=4 {
            insert(&mut jb, seq);
        }
        assert_eq!(pop(&mut jb), "1");
        assert_eq!(insert(&mut jb, 1000), Insert::Reset(ResetReason::SequenceJump));
        insert(&mut jb, 1001);
        assert_eq!(pop(&mut jb), "-", "filling again");
        insert(&mut jb, 1002);
        assert_eq!(pops(&mut jb, 4), ["1000", "1001", "1002", "-"]);
        // Far behind is a restart too, not a late packet.
        assert_eq!(insert(&mut jb, 500), Insert::Reset(ResetReason::SequenceJump));
        assert_eq!(jb.insert(SSRC + 1, 501, 0, &[0xFF; 160]), Insert::Reset(ResetReason::SsrcChanged));
        assert_eq!(jb.depth(), 1);
        assert_eq!(jb.stats().resets, 3);
        // Just beyond the slots ahead of the head is a jump; just inside is stored.
        let mut jb = JitterBuffer::default();
        insert(&mut jb, 0);
        assert_eq!(insert(&mut jb, SLOTS as u16 - 1), Insert::Stored);
        assert_eq!(insert(&mut jb, SLOTS as u16), Insert::Reset(ResetReason::SequenceJump));
    }

    #[test]
    fn an_underrun_holds_position_so_a_paused_stream_resumes() {
        let mut jb = JitterBuffer::default();
        for seq in 1..=3 {
            insert(&mut jb, seq);
        }
        assert_eq!(pops(&mut jb, 3), ["1", "2", "3"]);
        // The far end goes quiet for 10 ticks (silence suppression); nothing is skipped meanwhile.
        assert_eq!(pops(&mut jb, 10), vec!["-"; 10]);
        for seq in 4..=6 {
            assert_eq!(insert(&mut jb, seq), Insert::Stored);
        }
        assert_eq!(pops(&mut jb, 4), ["4", "5", "6", "-"]);
        assert_eq!(jb.stats().missing, 0);
    }

    #[test]
    fn payloads_are_bounded_and_may_be_short() {
        let mut jb = JitterBuffer::new(JitterConfig { target_depth: 1 }).expect("valid");
        assert_eq!(jb.insert(SSRC, 7, 0, &[0; 161]), Insert::Oversized { len: 161 });
        assert_eq!(jb.insert(SSRC, 7, 0, &[1, 2, 3]), Insert::Stored);
        assert_eq!(jb.pop(), Pop::Frame { sequence_number: 7, timestamp: 0, payload: &[1, 2, 3] });
        assert_eq!(jb.stats().oversized, 1);
    }

    #[test]
    fn the_target_depth_is_checked() {
        for depth in [0, SLOTS / 2 + 1] {
            assert_eq!(
                JitterBuffer::new(JitterConfig { target_depth: depth }).err(),
                Some(JitterError::TargetDepthOutOfRange { depth, max: SLOTS / 2 })
            );
        }
        let mut jb = JitterBuffer::new(JitterConfig { target_depth: 5 }).expect("valid");
        for seq in 0..5 {
            insert(&mut jb, seq);
        }
        assert_eq!(pops(&mut jb, 1), ["0"]);
    }
}

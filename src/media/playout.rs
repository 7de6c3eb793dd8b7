//! The playout buffer for agent -> network audio: owns the samples an agent has sent and the
//! network has not heard yet, and the `mark`s placed among them.
//!
//! Agents write faster than real time (a TTS reply arrives in a burst); the call's 20 ms clock
//! takes exactly one frame per tick with [`PlayoutBuffer::pop`], silence when nothing is queued.
//! The queue is bounded ([`DEFAULT_CAPACITY_SAMPLES`] = 120 s): a push that does not fit is
//! accepted up to the bound and the rest is reported in [`Overflow`], never dropped silently
//! (shared/reference/voice-sip-rtp.md §1.3, items 3-5).
//!
//! A mark is placed at the current write position and comes back from the `pop` whose frame
//! plays the sample just before it, so the agent learns what was actually heard; a mark placed
//! while nothing is queued comes back from the next pop. [`PlayoutBuffer::clear`] (barge-in)
//! drops the queue and hands back the pending marks flagged `cleared`.
//!
//! What this module must not do: read a clock, resample, or allocate per frame. The queue grows
//! (amortised, by doubling) toward its bound rather than reserving 3.8 MB per call up front; a
//! mark's name is allocated once, by the caller, when the mark is made.

use std::collections::VecDeque;
use std::collections::vec_deque::Drain;

use super::frame::{FRAME_SAMPLES, SAMPLE_RATE_HZ};

/// The default bound: 120 s of 16 kHz audio, 1 920 000 samples.
pub const DEFAULT_CAPACITY_SAMPLES: usize = 120 * SAMPLE_RATE_HZ as usize;
/// The default bound on marks waiting to be played; an agent has no reason to queue more.
pub const DEFAULT_MAX_PENDING_MARKS: usize = 1024;
/// What the queue reserves at creation: 1 s. Beyond it, it grows on demand up to the bound.
const INITIAL_RESERVE_SAMPLES: usize = SAMPLE_RATE_HZ as usize;

/// The bounds of one call's buffer (config: `voice.playout_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayoutConfig {
    pub capacity_samples: usize,
    pub max_pending_marks: usize,
}

impl Default for PlayoutConfig {
    fn default() -> Self {
        Self { capacity_samples: DEFAULT_CAPACITY_SAMPLES, max_pending_marks: DEFAULT_MAX_PENDING_MARKS }
    }
}

/// A push that did not fit: the first `accepted` samples were queued, the last `rejected` were not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("playout buffer full: {rejected} samples not accepted ({accepted} accepted)")]
pub struct Overflow {
    pub accepted: usize,
    pub rejected: usize,
}

/// A mark the buffer would not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MarkError {
    #[error("{max} marks are already waiting to be played")]
    TooManyPending { max: usize },
}

/// A named position in the agent's audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub name: String,
    /// True when the audio before the mark was dropped by [`PlayoutBuffer::clear`], not played.
    pub cleared: bool,
    /// Samples accepted before the mark, counted from the start of the call.
    position: u64,
}

/// What one tick played.
#[derive(Debug)]
pub struct Played<'a> {
    /// Samples of the frame that came from the agent; the rest is silence.
    pub audio_samples: usize,
    /// Marks whose audio has now been played, in the order they were made.
    pub marks: Drain<'a, Mark>,
}

impl Played<'_> {
    /// The frame carried agent audio (possibly completed with silence).
    pub fn is_audio(&self) -> bool {
        self.audio_samples > 0
    }
}

/// What a `clear` dropped.
#[derive(Debug)]
pub struct Cleared<'a> {
    pub dropped_samples: usize,
    /// Every pending mark, `cleared` set, in the order they were made.
    pub marks: Drain<'a, Mark>,
}

/// One call's agent -> network audio queue.
#[derive(Debug)]
pub struct PlayoutBuffer {
    queue: VecDeque<i16>,
    marks: VecDeque<Mark>,
    config: PlayoutConfig,
    /// Samples ever accepted.
    written: u64,
    /// Samples ever taken out, by pop or by clear.
    consumed: u64,
    /// Samples of agent audio ever played.
    played: u64,
}

impl Default for PlayoutBuffer {
    fn default() -> Self {
        Self::new(PlayoutConfig::default())
    }
}

impl PlayoutBuffer {
    pub fn new(config: PlayoutConfig) -> Self {
        Self {
            queue: VecDeque::with_capacity(INITIAL_RESERVE_SAMPLES.min(config.capacity_samples)),
            marks: VecDeque::new(),
            config,
            written: 0,
            consumed: 0,
            played: 0,
        }
    }

    /// Queues agent audio. Takes as much as fits; if not all of it, says how much was refused.
    pub fn push(&mut self, samples: &[i16]) -> Result<(), Overflow> {
        let room = self.config.capacity_samples.saturating_sub(self.queue.len());
        let accepted = samples.len().min(room);
        self.queue.extend(&samples[..accepted]);
        self.written += accepted as u64;
        if accepted < samples.len() { Err(Overflow { accepted, rejected: samples.len() - accepted }) } else { Ok(()) }
    }

    /// Places a mark after everything pushed so far.
    pub fn mark(&mut self, name: String) -> Result<(), MarkError> {
        if self.marks.len() >= self.config.max_pending_marks {
            return Err(MarkError::TooManyPending { max: self.config.max_pending_marks });
        }
        self.marks.push_back(Mark { name, cleared: false, position: self.written });
        Ok(())
    }

    /// Takes one frame: queued audio, completed with silence if the queue runs out, or all
    /// silence. Returns how much was audio and the marks that frame completes.
    pub fn pop(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Played<'_> {
        let audio_samples = self.queue.len().min(FRAME_SAMPLES);
        // The ring's two halves, copied whole, then dropped from the front: two memcpys.
        let (front, back) = self.queue.as_slices();
        let from_front = front.len().min(audio_samples);
        out[..from_front].copy_from_slice(&front[..from_front]);
        out[from_front..audio_samples].copy_from_slice(&back[..audio_samples - from_front]);
        self.queue.drain(..audio_samples);
        out[audio_samples..].fill(0);
        self.consumed += audio_samples as u64;
        self.played += audio_samples as u64;
        let due = self.marks.iter().take_while(|m| m.position <= self.consumed).count();
        Played { audio_samples, marks: self.marks.drain(..due) }
    }

    /// Drops every queued sample (barge-in) and returns the pending marks, flagged `cleared`.
    pub fn clear(&mut self) -> Cleared<'_> {
        let dropped_samples = self.queue.len();
        self.queue.clear();
        if self.queue.capacity() > INITIAL_RESERVE_SAMPLES * 4 {
            // A long reply grew the queue; give the memory back rather than hold it all call.
            self.queue.shrink_to(INITIAL_RESERVE_SAMPLES);
        }
        self.consumed += dropped_samples as u64;
        for mark in &mut self.marks {
            mark.cleared = true;
        }
        Cleared { dropped_samples, marks: self.marks.drain(..) }
    }

    /// Samples waiting to be played.
    pub fn queued_samples(&self) -> usize {
        self.queue.len()
    }

    /// Room left before a push overflows.
    pub fn free_samples(&self) -> usize {
        self.config.capacity_samples.saturating_sub(self.queue.len())
    }

    /// Marks waiting for their audio to be played.
    pub fn pending_marks(&self) -> usize {
        self.marks.len()
    }

    /// Agent audio played since the call began, in samples (for a `played_ms` event).
    pub fn played_samples(&self) -> u64 {
        self.played
    }

    pub fn config(&self) -> PlayoutConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(marks: Drain<'_, Mark>) -> Vec<(String, bool)> {
        marks.map(|m| (m.name, m.cleared)).collect()
    }

    /// One tick, consumed: (audio samples, marks as (name, cleared)).
    fn tick(buffer: &mut PlayoutBuffer, frame: &mut [i16; FRAME_SAMPLES]) -> (usize, Vec<(String, bool)>) {
        let played = buffer.pop(frame);
        assert_eq!(played.is_audio(), played.audio_samples > 0);
        (played.audio_samples, names(played.marks))
    }

    fn mark(name: &str, cleared: bool) -> (String, bool) {
        (name.to_owned(), cleared)
    }

    fn ramp(from: i16, len: usize) -> Vec<i16> {
        (0..len).map(|i| from.wrapping_add(i as i16)).collect()
    }

    #[test]
    fn pops_exact_frames_then_silence() {
        let mut buffer = PlayoutBuffer::default();
        let audio = ramp(1, 700);
        buffer.push(&audio).expect("fits");
        let mut frame = [0i16; FRAME_SAMPLES];
        assert_eq!(tick(&mut buffer, &mut frame), (320, vec![]));
        assert_eq!(&frame[..], &audio[..320]);
        assert_eq!(tick(&mut buffer, &mut frame), (320, vec![]));
        assert_eq!(&frame[..], &audio[320..640]);
        assert_eq!(tick(&mut buffer, &mut frame), (60, vec![]), "the tail, completed with silence");
        assert_eq!(&frame[..60], &audio[640..]);
        assert!(frame[60..].iter().all(|&s| s == 0));
        assert_eq!(tick(&mut buffer, &mut frame), (0, vec![]));
        assert_eq!(frame, [0; FRAME_SAMPLES]);
        assert_eq!(buffer.played_samples(), 700);
    }

    #[test]
    fn overflow_accepts_up_to_the_bound_and_reports_the_rest() {
        let mut buffer = PlayoutBuffer::new(PlayoutConfig { capacity_samples: 1000, ..PlayoutConfig::default() });
        buffer.push(&[1; 900]).expect("fits");
        assert_eq!(buffer.push(&[2; 300]), Err(Overflow { accepted: 100, rejected: 200 }));
        assert_eq!(buffer.queued_samples(), 1000);
        assert_eq!(buffer.free_samples(), 0);
        assert_eq!(buffer.push(&[3; 1]), Err(Overflow { accepted: 0, rejected: 1 }));
        let mut frame = [0i16; FRAME_SAMPLES];
        for _ in 0..3 {
            tick(&mut buffer, &mut frame);
        }
        assert_eq!(buffer.queued_samples(), 40);
        assert_eq!(frame[..260], [1i16; 260], "900 of the first push");
        assert_eq!(frame[260..], [2i16; 60], "then the accepted part of the overflowing push");
        assert_eq!(buffer.free_samples(), 960);
        assert_eq!(PlayoutConfig::default().capacity_samples, 1_920_000);
    }

    #[test]
    fn a_mark_fires_with_the_frame_that_plays_the_sample_before_it() {
        let mut buffer = PlayoutBuffer::default();
        let mut frame = [0i16; FRAME_SAMPLES];
        buffer.push(&[1; 320]).expect("fits");
        buffer.mark("frame-boundary".into()).expect("room");
        buffer.push(&[1; 400]).expect("fits");
        buffer.mark("mid-frame".into()).expect("room");
        buffer.mark("same-place".into()).expect("room");
        assert_eq!(tick(&mut buffer, &mut frame), (320, vec![mark("frame-boundary", false)]));
        assert_eq!(tick(&mut buffer, &mut frame), (320, vec![]));
        assert_eq!(tick(&mut buffer, &mut frame), (80, vec![mark("mid-frame", false), mark("same-place", false)]));
        assert_eq!(buffer.pending_marks(), 0);
    }

    #[test]
    fn a_mark_on_an_empty_buffer_fires_on_the_next_pop() {
        let mut buffer = PlayoutBuffer::default();
        let mut frame = [0i16; FRAME_SAMPLES];
        buffer.mark("at-start".into()).expect("room");
        assert_eq!(tick(&mut buffer, &mut frame), (0, vec![mark("at-start", false)]));
        // And after the queue has drained too.
        buffer.push(&[5; 10]).expect("fits");
        assert_eq!(tick(&mut buffer, &mut frame), (10, vec![]));
        buffer.mark("after-drain".into()).expect("room");
        assert_eq!(tick(&mut buffer, &mut frame), (0, vec![mark("after-drain", false)]));
    }

    #[test]
    fn clear_drops_audio_and_returns_pending_marks_flagged() {
        let mut buffer = PlayoutBuffer::default();
        let mut frame = [0i16; FRAME_SAMPLES];
        buffer.push(&[7; 1000]).expect("fits");
        buffer.mark("a".into()).expect("room");
        buffer.push(&[7; 1000]).expect("fits");
        buffer.mark("b".into()).expect("room");
        tick(&mut buffer, &mut frame);
        let Cleared { dropped_samples, marks } = buffer.clear();
        assert_eq!(dropped_samples, 1680);
        assert_eq!(names(marks), vec![mark("a", true), mark("b", true)]);
        assert_eq!(buffer.queued_samples(), 0);
        assert_eq!(tick(&mut buffer, &mut frame), (0, vec![]));
        // Marks after the clear are positioned on the new audio, not the dropped one.
        buffer.push(&[9; 320]).expect("fits");
        buffer.mark("c".into()).expect("room");
        assert_eq!(tick(&mut buffer, &mut frame), (320, vec![mark("c", false)]));
        assert_eq!(frame, [9; FRAME_SAMPLES]);
        assert_eq!(buffer.played_samples(), 640);
    }

    #[test]
    fn pending_marks_are_bounded() {
        let mut buffer = PlayoutBuffer::new(PlayoutConfig { max_pending_marks: 2, ..PlayoutConfig::default() });
        buffer.mark("1".into()).expect("room");
        buffer.mark("2".into()).expect("room");
        assert_eq!(buffer.mark("3".into()), Err(MarkError::TooManyPending { max: 2 }));
        let mut frame = [0i16; FRAME_SAMPLES];
        assert_eq!(tick(&mut buffer, &mut frame).1.len(), 2);
        buffer.mark("3".into()).expect("room again");
    }

    #[test]
    fn clear_gives_back_the_memory_of_a_long_reply() {
        let mut buffer = PlayoutBuffer::default();
        buffer.push(&vec![1; 16_000 * 30]).expect("fits");
        assert!(buffer.queue.capacity() >= 16_000 * 30);
        let _ = buffer.clear();
        assert!(buffer.queue.capacity() < 16_000 * 30);
    }
}

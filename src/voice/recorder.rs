//! Call recording to a 16 kHz, 16-bit WAV file: caller on the left and agent on the right, or both
//! mixed to mono. Owns the writer thread and the bounded queue that feeds it.
//!
//! WAV writing is blocking `std::io` (hound 3.5), so it runs on a dedicated thread, fed by a
//! `std::sync::mpsc::sync_channel` of [`QUEUE_FRAMES`] fixed-size frames whose slots are allocated
//! when it is made. [`Recorder::write`] uses `try_send`: it never blocks the call's task; a full
//! queue drops the frame, counts it, and the next frame that gets through carries the count so the
//! thread writes that much silence and the two sides stay aligned with the call's clock. The
//! thread rewrites the header every [`FLUSH_EVERY_FRAMES`] (1 s of audio), so a crash leaves a
//! valid file that ends at most a second early; [`Recorder::finish`] (or dropping the handle)
//! finalizes it.
//!
//! What this module must not do: mix or resample beyond adding the two sides, block the sender,
//! or decide where recordings live and for how long.

use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};

use hound::{SampleFormat, WavSpec, WavWriter};

use crate::media::frame::{FRAME_SAMPLES, SAMPLE_RATE_HZ};

/// Frames the queue holds: 2 s of audio, 1284 octets each (~128 KiB per call), before frames drop.
pub const QUEUE_FRAMES: usize = 100;
/// The header is rewritten after this many frames: 1 s of audio.
pub const FLUSH_EVERY_FRAMES: u64 = 50;
/// The longest recording: 12 h, well inside WAV's 4 GiB (stereo 16 kHz is 64 KB/s, 18.6 h).
/// Later frames are counted as truncated and not written.
pub const MAX_FRAMES: u64 = 12 * 3600 * 50;
/// The writer thread does no deep calls; a small stack keeps many recordings cheap.
const WRITER_STACK_BYTES: usize = 256 * 1024;

/// How the two sides are laid out in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingLayout {
    /// Two channels: the caller (network side) left, the agent right.
    Stereo,
    /// One channel: the two sides added, saturating.
    Mixed,
}

impl RecordingLayout {
    const fn channels(self) -> u16 {
        match self {
            Self::Stereo => 2,
            Self::Mixed => 1,
        }
    }
}

/// What the writer thread wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingSummary {
    /// Frames in the file, including the silence written for dropped frames.
    pub frames: u64,
    /// Frames that were dropped on a full queue and written as silence.
    pub gap_frames: u64,
    /// Frames beyond [`MAX_FRAMES`], not written.
    pub truncated_frames: u64,
}

impl RecordingSummary {
    pub const fn duration_ms(&self) -> u64 {
        self.frames * 20
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("cannot start the recording thread")]
    Spawn(#[source] io::Error),
    #[error("writing the recording failed")]
    Wav(#[from] hound::Error),
    #[error("the recording queue is full; the frame was dropped")]
    QueueFull,
    #[error("the recording thread has stopped; `finish` reports why")]
    WriterStopped,
    #[error("the recording thread panicked")]
    WriterPanicked,
}

/// One 20 ms frame of both sides, and how many frames were dropped just before it.
struct Frame {
    gap_frames: u32,
    caller: [i16; FRAME_SAMPLES],
    agent: [i16; FRAME_SAMPLES],
}

/// The call's handle on its recording. Dropping it finalizes the file in the background;
/// [`finish`](Self::finish) waits for that and reports any error.
#[derive(Debug)]
pub struct Recorder {
    tx: Option<SyncSender<Frame>>,
    thread: Option<JoinHandle<Result<RecordingSummary, RecorderError>>>,
    /// Frames dropped since the last one that got through.
    pending_gap: u32,
    dropped_frames: u64,
}

impl Recorder {
    /// Starts the writer thread, which creates (or truncates) the file at `path`. A file that
    /// cannot be created shows up as [`RecorderError::WriterStopped`] from `write`, and as the
    /// cause from [`finish`](Self::finish).
    pub fn start(path: impl Into<PathBuf>, layout: RecordingLayout) -> Result<Self, RecorderError> {
        let path = path.into();
        let (tx, rx) = mpsc::sync_channel(QUEUE_FRAMES);
        let thread = thread::Builder::new()
            .name("call-recorder".into())
            .stack_size(WRITER_STACK_BYTES)
            .spawn(move || write_file(path, layout, rx))
            .map_err(RecorderError::Spawn)?;
        Ok(Self { tx: Some(tx), thread: Some(thread), pending_gap: 0, dropped_frames: 0 })
    }

    /// Queues one tick of both sides. Never blocks: on a full queue the frame is dropped, counted,
    /// and later written as silence.
    pub fn write(&mut self, caller: &[i16; FRAME_SAMPLES], agent: &[i16; FRAME_SAMPLES]) -> Result<(), RecorderError> {
        let Some(tx) = &self.tx else { return Err(RecorderError::WriterStopped) };
        match tx.try_send(Frame { gap_frames: self.pending_gap, caller: *caller, agent: *agent }) {
            Ok(()) => {
                self.pending_gap = 0;
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.pending_gap = self.pending_gap.saturating_add(1);
                self.dropped_frames += 1;
                Err(RecorderError::QueueFull)
            }
            Err(TrySendError::Disconnected(_)) => Err(RecorderError::WriterStopped),
        }
    }

    /// Frames dropped on a full queue since the recording began.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }

    /// Closes the queue, waits for the thread to write what is queued and finalize the file.
    /// Blocks: from async code, call it inside `spawn_blocking`.
    pub fn finish(mut self) -> Result<RecordingSummary, RecorderError> {
        self.tx = None;
        let thread = self.thread.take().ok_or(RecorderError::WriterStopped)?;
        thread.join().map_err(|_| RecorderError::WriterPanicked)?
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Closing the queue is the thread's signal to finalize; it needs no join to do so.
        self.tx = None;
    }
}

/// The writer thread: frames from `rx` until every sender is gone, then finalize.
fn write_file(path: PathBuf, layout: RecordingLayout, rx: Receiver<Frame>) -> Result<RecordingSummary, RecorderError> {
    let spec = WavSpec {
        channels: layout.channels(),
        sample_rate: SAMPLE_RATE_HZ,
        bits_per_sample: 16,
        sample_format: SampleFormat::Int,
    };
    let mut writer = WavWriter::create(&path, spec)?;
    writer.flush()?; // valid (empty) from the first moment
    let mut summary = RecordingSummary { frames: 0, gap_frames: 0, truncated_frames: 0 };
    let mut since_flush = 0;
    let silence = [0i16; FRAME_SAMPLES];
    while let Ok(frame) = rx.recv() {
        let frames = (0..frame.gap_frames).map(|_| (&silence, &silence)).chain([(&frame.caller, &frame.agent)]);
        for (i, (caller, agent)) in frames.enumerate() {
            if summary.frames >= MAX_FRAMES {
                summary.truncated_frames += 1;
                continue;
            }
            write_frame(&mut writer, layout, caller, agent)?;
            summary.frames += 1;
            if i < frame.gap_frames as usize {
                summary.gap_frames += 1;
            }
            since_flush += 1;
            if since_flush >= FLUSH_EVERY_FRAMES {
                writer.flush()?;
                since_flush = 0;
            }
        }
    }
    writer.finalize()?;
    Ok(summary)
}

fn write_frame<W: io::Write + io::Seek>(
    writer: &mut WavWriter<W>,
    layout: RecordingLayout,
    caller: &[i16; FRAME_SAMPLES],
    agent: &[i16; FRAME_SAMPLES],
) -> Result<(), hound::Error> {
    let samples = FRAME_SAMPLES as u32 * u32::from(layout.channels());
    let mut out = writer.get_i16_writer(samples);
    for (&c, &a) in caller.iter().zip(agent) {
        match layout {
            RecordingLayout::Stereo => {
                out.write_sample(c);
                out.write_sample(a);
            }
            RecordingLayout::Mixed => out.write_sample(c.saturating_add(a)),
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn caller_frame(n: usize) -> [i16; FRAME_SAMPLES] {
        std::array::from_fn(|i| ((n * FRAME_SAMPLES + i) % 20_000) as i16)
    }

    fn agent_frame(n: usize) -> [i16; FRAME_SAMPLES] {
        std::array::from_fn(|i| -(((n * 7 + i) % 10_000) as i16))
    }

    /// Writes `frames` numbered frames; fewer than [`QUEUE_FRAMES`], so none can be dropped.
    fn write_all(recorder: &mut Recorder, frames: usize) {
        assert!(frames < QUEUE_FRAMES);
        for n in 0..frames {
            recorder.write(&caller_frame(n), &agent_frame(n)).expect("the queue has room");
        }
    }

    fn read(path: &std::path::Path) -> Result<(WavSpec, Vec<i16>), hound::Error> {
        let mut reader = hound::WavReader::open(path)?;
        let spec = reader.spec();
        let samples = reader.samples::<i16>().collect::<Result<Vec<_>, _>>()?;
        Ok((spec, samples))
    }

    #[test]
    fn a_finished_recording_reads_back_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("call.wav");
        let mut recorder = Recorder::start(&path, RecordingLayout::Stereo).expect("start");
        write_all(&mut recorder, 75);
        let summary = recorder.finish().expect("finish");
        assert_eq!(summary, RecordingSummary { frames: 75, gap_frames: 0, truncated_frames: 0 });
        assert_eq!(summary.duration_ms(), 1500);
        let (spec, samples) = read(&path).expect("a valid WAV");
        assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (2, 16_000, 16));
        let expected: Vec<i16> =
            (0..75).flat_map(|n| caller_frame(n).into_iter().zip(agent_frame(n)).flat_map(|(c, a)| [c, a])).collect();
        assert_eq!(samples, expected);
    }

    #[test]
    fn a_mixed_recording_adds_the_sides_saturating() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mixed.wav");
        let mut recorder = Recorder::start(&path, RecordingLayout::Mixed).expect("start");
        recorder.write(&[30_000; FRAME_SAMPLES], &[10_000; FRAME_SAMPLES]).expect("queued");
        recorder.write(&[-5; FRAME_SAMPLES], &[3; FRAME_SAMPLES]).expect("queued");
        recorder.finish().expect("finish");
        let (spec, samples) = read(&path).expect("a valid WAV");
        assert_eq!(spec.channels, 1);
        assert_eq!(samples.len(), 2 * FRAME_SAMPLES);
        assert!(samples[..FRAME_SAMPLES].iter().all(|&s| s == i16::MAX));
        assert!(samples[FRAME_SAMPLES..].iter().all(|&s| s == -2));
    }

    #[test]
    fn a_writer_that_never_finalizes_leaves_a_valid_file_with_at_least_a_second() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("crash.wav");
        let mut recorder = Recorder::start(&path, RecordingLayout::Stereo).expect("start");
        write_all(&mut recorder, 75);
        // As if the process died: the handle never closes the queue, nothing finalizes.
        std::mem::forget(recorder);
        let deadline = Instant::now() + Duration::from_secs(10);
        let samples = loop {
            // The thread may be rewriting the header while we read; retry until it is consistent.
            match read(&path) {
                Ok((_, samples)) if samples.len() >= 16_000 * 2 => break samples,
                _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                other => panic!("no valid second of audio in time: {:?}", other.map(|(_, s)| s.len())),
            }
        };
        assert_eq!(samples.len(), 16_000 * 2, "the header covers the first flush, 50 frames");
        assert_eq!(samples[0..2], [caller_frame(0)[0], agent_frame(0)[0]]);
    }

    #[test]
    fn a_full_queue_drops_counts_and_records_the_gap_as_silence() {
        // The sending half against a queue nobody drains.
        let (tx, rx) = mpsc::sync_channel(2);
        let mut recorder = Recorder { tx: Some(tx), thread: None, pending_gap: 0, dropped_frames: 0 };
        let loud = [1000i16; FRAME_SAMPLES];
        recorder.write(&loud, &loud).expect("queued");
        recorder.write(&loud, &loud).expect("queued");
        assert!(matches!(recorder.write(&loud, &loud), Err(RecorderError::QueueFull)));
        assert!(matches!(recorder.write(&loud, &loud), Err(RecorderError::QueueFull)));
        assert_eq!(recorder.dropped_frames(), 2);
        let first = rx.recv().expect("a frame");
        assert_eq!(first.gap_frames, 0);
        recorder.write(&loud, &loud).expect("room again");
        drop(recorder);
        let frames: Vec<Frame> = std::iter::once(first).chain(rx.iter()).collect();
        assert_eq!(frames.iter().map(|f| f.gap_frames).collect::<Vec<_>>(), vec![0, 0, 2]);

        // The writing half turns the gap into silence in its place.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gap.wav");
        let (tx, rx) = mpsc::sync_channel(QUEUE_FRAMES);
        for frame in frames {
            tx.send(frame).expect("queued");
        }
        drop(tx);
        let summary = write_file(path.clone(), RecordingLayout::Mixed, rx).expect("written");
        assert_eq!(summary, RecordingSummary { frames: 5, gap_frames: 2, truncated_frames: 0 });
        let (_, samples) = read(&path).expect("a valid WAV");
        let per_frame: Vec<i16> = samples.chunks(FRAME_SAMPLES).map(|c| c[0]).collect();
        assert_eq!(per_frame, vec![2000, 2000, 0, 0, 2000]);
    }

    #[test]
    fn a_file_that_cannot_be_created_stops_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing-dir").join("call.wav");
        let mut recorder = Recorder::start(&path, RecordingLayout::Stereo).expect("start");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match recorder.write(&[0; FRAME_SAMPLES], &[0; FRAME_SAMPLES]) {
                Err(RecorderError::WriterStopped) => break,
                _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                other => panic!("writer still running: {other:?}"),
            }
        }
        assert!(matches!(recorder.finish(), Err(RecorderError::Wav(hound::Error::IoError(_)))));
    }
}

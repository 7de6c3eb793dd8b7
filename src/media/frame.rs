//! The call stream's frame: 20 ms of 16 kHz mono s16le, 320 samples, 640 octets; and on the
//! narrowband (G.711) side, 20 ms of 8 kHz, 160 samples. Owns the frame constants, the
//! [`Reframer`] that cuts an agent's binary messages of any even length into exact frames, and the
//! s16le <-> `i16` conversions.
//!
//! The server always sends exactly [`FRAME_BYTES`]; an agent may send any even length (one sample
//! is two octets) and the remainder waits for the next message (as Asterisk and Sinch do, see
//! shared/reference/voice-sip-rtp.md §1.3). An odd length is refused whole with
//! [`FrameError::OddLength`], which the session reports as an error event; the Reframer's state is
//! then unchanged.
//!
//! What this module must not do: buffer more than one partial frame, pace, or allocate.

/// Sample rate of the agent's stream.
pub const SAMPLE_RATE_HZ: u32 = 16_000;
/// One frame, on both sides of the bridge.
pub const FRAME_MS: u32 = 20;
/// Samples in one stream frame: 16 000 Hz × 20 ms.
pub const FRAME_SAMPLES: usize = (SAMPLE_RATE_HZ * FRAME_MS / 1000) as usize;
/// Octets in one stream frame, s16le.
pub const FRAME_BYTES: usize = FRAME_SAMPLES * 2;
/// Sample rate of G.711 on the trunk.
pub const NARROWBAND_SAMPLE_RATE_HZ: u32 = 8_000;
/// Samples (and G.711 octets) in one narrowband frame: 8 000 Hz × 20 ms.
pub const NARROWBAND_FRAME_SAMPLES: usize = (NARROWBAND_SAMPLE_RATE_HZ * FRAME_MS / 1000) as usize;

/// An agent message the stream cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("binary audio of {len} octets is not whole 16-bit samples")]
    OddLength { len: usize },
}

/// Cuts a byte stream of s16le audio into [`FRAME_BYTES`]-octet frames, whatever the sizes of the
/// messages it arrives in; keeps the partial frame (always an even count, below one frame).
#[derive(Debug, Clone)]
pub struct Reframer {
    pending: [u8; FRAME_BYTES],
    pending_len: usize,
}

impl Default for Reframer {
    fn default() -> Self {
        Self::new()
    }
}

impl Reframer {
    pub const fn new() -> Self {
        Self { pending: [0; FRAME_BYTES], pending_len: 0 }
    }

    /// Feeds one binary message; calls `frame` for every complete frame, in order, and returns how
    /// many there were. An odd-length message is refused whole, before any frame is emitted.
    pub fn push(&mut self, payload: &[u8], mut frame: impl FnMut(&[u8; FRAME_BYTES])) -> Result<usize, FrameError> {
        if !payload.len().is_multiple_of(2) {
            return Err(FrameError::OddLength { len: payload.len() });
        }
        let mut emitted = 0;
        let mut rest = payload;
        if self.pending_len > 0 {
            let take = (FRAME_BYTES - self.pending_len).min(rest.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&rest[..take]);
            self.pending_len += take;
            rest = &rest[take..];
            if self.pending_len < FRAME_BYTES {
                return Ok(0);
            }
            frame(&self.pending);
            self.pending_len = 0;
            emitted += 1;
        }
        let (whole, tail) = rest.as_chunks::<FRAME_BYTES>();
        for chunk in whole {
            frame(chunk);
        }
        emitted += whole.len();
        self.pending[..tail.len()].copy_from_slice(tail);
        self.pending_len = tail.len();
        Ok(emitted)
    }

    /// Octets waiting for the rest of their frame.
    pub const fn pending_bytes(&self) -> usize {
        self.pending_len
    }

    /// The partial frame completed with silence, if there is one; the Reframer is empty afterwards.
    /// The session calls this before a `mark` so the end of an utterance is played, not held back.
    pub fn flush_padded(&mut self) -> Option<[u8; FRAME_BYTES]> {
        if self.pending_len == 0 {
            return None;
        }
        let mut frame = [0u8; FRAME_BYTES];
        frame[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
        self.pending_len = 0;
        Some(frame)
    }

    /// Drops the partial frame (barge-in `clear`).
    pub fn clear(&mut self) {
        self.pending_len = 0;
    }
}

/// s16le octets -> samples; returns the samples written: `min(bytes.len() / 2, out.len())`.
/// A trailing odd octet is ignored.
pub fn s16le_to_samples(bytes: &[u8], out: &mut [i16]) -> usize {
    let (pairs, _) = bytes.as_chunks::<2>();
    pairs.iter().zip(out.iter_mut()).map(|(pair, o)| *o = i16::from_le_bytes(*pair)).count()
}

/// Samples -> s16le octets; returns the samples converted: `min(samples.len(), out.len() / 2)`.
pub fn samples_to_s16le(samples: &[i16], out: &mut [u8]) -> usize {
    let (pairs, _) = out.as_chunks_mut::<2>();
    samples.iter().zip(pairs.iter_mut()).map(|(s, pair)| *pair = s.to_le_bytes()).count()
}

/// One stream frame's octets as samples.
pub fn frame_to_samples(frame: &[u8; FRAME_BYTES], out: &mut [i16; FRAME_SAMPLES]) {
    s16le_to_samples(frame, out);
}

/// One frame of samples as the octets the server sends.
pub fn samples_to_frame(samples: &[i16; FRAME_SAMPLES], out: &mut [u8; FRAME_BYTES]) {
    samples_to_s16le(samples, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn constants() {
        assert_eq!((FRAME_SAMPLES, FRAME_BYTES, NARROWBAND_FRAME_SAMPLES), (320, 640, 160));
    }

    #[test]
    fn any_even_split_yields_the_same_exact_frames() {
        let stream = ramp(640 * 7 + 100);
        for sizes in [&[2usize][..], &[640], &[1000, 2, 638, 4000], &[6], &[1282, 0, 2], &[4480, 100]] {
            let mut reframer = Reframer::new();
            let mut frames: Vec<u8> = Vec::new();
            let mut offset = 0;
            let mut i = 0;
            while offset < stream.len() {
                let len = sizes[i % sizes.len()].min(stream.len() - offset);
                i += 1;
                let n = reframer.push(&stream[offset..offset + len], |f| frames.extend_from_slice(f)).expect("even");
                assert!(n <= len / 640 + 1);
                offset += len;
            }
            assert_eq!(frames.len(), 640 * 7, "sizes {sizes:?}");
            assert_eq!(&frames[..], &stream[..640 * 7]);
            assert_eq!(reframer.pending_bytes(), 100);
            let last = reframer.flush_padded().expect("a partial frame");
            assert_eq!(&last[..100], &stream[640 * 7..]);
            assert!(last[100..].iter().all(|&b| b == 0));
            assert_eq!(reframer.flush_padded(), None);
        }
    }

    #[test]
    fn odd_lengths_are_refused_whole() {
        let mut reframer = Reframer::new();
        assert_eq!(reframer.push(&[1, 2, 3, 4], |_| unreachable!()), Ok(0));
        assert_eq!(reframer.push(&[0; 641], |_| panic!("nothing emitted")), Err(FrameError::OddLength { len: 641 }));
        assert_eq!(reframer.pending_bytes(), 4, "state unchanged by the refused message");
        reframer.clear();
        assert_eq!(reframer.pending_bytes(), 0);
    }

    #[test]
    fn sample_conversion_is_little_endian() {
        let mut samples = [0i16; 3];
        assert_eq!(s16le_to_samples(&[0x01, 0x00, 0xFF, 0xFF, 0x00, 0x80, 0x7F], &mut samples), 3);
        assert_eq!(samples, [1, -1, i16::MIN]);
        let mut bytes = [0u8; 5];
        assert_eq!(samples_to_s16le(&[0x1234, -2, 7], &mut bytes), 2);
        assert_eq!(bytes, [0x34, 0x12, 0xFE, 0xFF, 0]);
        let frame: [u8; FRAME_BYTES] = std::array::from_fn(|i| i as u8);
        let mut pcm = [0i16; FRAME_SAMPLES];
        frame_to_samples(&frame, &mut pcm);
        assert_eq!(pcm[1], i16::from_le_bytes([2, 3]));
        let mut back = [0u8; FRAME_BYTES];
        samples_to_frame(&pcm, &mut back);
        assert_eq!(back, frame);
    }
}

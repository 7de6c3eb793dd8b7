//! The test signal (silence with a periodic 1 kHz tone burst) and the onset detector that finds
//! the burst again in the echoed stream.
//!
//! Timing convention, used on both sides so that a zero-delay echo that keeps the framing
//! measures a zero round trip:
//! - a frame's instant (sent or arrived) is the instant of the **end** of its audio, i.e. just
//!   after its last sample: sample `j` of a frame of `len` samples sent or received at instant
//!   `t` is at `t - (len - j) / 16000 s`;
//! - a burst's start is the instant of its first sample; an echo's onset is the instant of the
//!   estimated first tone sample (sub-block resolution refined by the partial-block level, below).

pub const SAMPLE_RATE: u32 = 16_000;
pub const FRAME_SAMPLES: usize = 320;
pub const FRAME_BYTES: usize = FRAME_SAMPLES * 2;
pub const FRAME_MS: u64 = 20;
pub const FRAMES_PER_SECOND: u64 = 1000 / FRAME_MS;
/// Goertzel block: 5 ms (80 samples = exactly 5 cycles of 1 kHz, so the tone sits on the bin).
pub const SUB_BLOCK: usize = 80;
/// Burst `m` of a call is a tone at `TONES_HZ[m % 4]` (the first at 1 kHz). Each sits on its
/// own Goertzel bin of a 5 ms sub-block (bins 5, 7, 9, 11: orthogonal over 80 samples), so an
/// echo names the burst it comes from and round trips up to 4 s are unambiguous.
pub const TONES_HZ: [f64; 4] = [1000.0, 1400.0, 1800.0, 2200.0];
pub const TONE_HZ: f64 = TONES_HZ[0];
/// Bursts repeat every second and last 100 ms.
pub const BURST_PERIOD: u64 = SAMPLE_RATE as u64;
pub const BURST_LEN: u64 = SAMPLE_RATE as u64 / 10;
/// 0.3 of full scale.
pub const TONE_AMPLITUDE: f64 = 0.3 * 32767.0;

/// The caller's signal: silence, and from sample `offset` on a burst every second.
#[derive(Clone, Copy, Debug)]
pub struct Signal {
    /// Sample index (from the first sample sent) of the first burst's first sample.
    pub offset: u64,
    /// Samples from `bursts_until` on are silence (the tail after the measurement window).
    pub bursts_until: u64,
}

impl Signal {
    /// Fills frame `k` (samples `k*320 .. k*320+320`) into `out` as s16le bytes. Returns the
    /// position in the frame of a burst's first sample, if one starts in this frame (the bursts
    /// of a call are numbered from 0 in order: burst `m` is tone `m % 4`).
    pub fn frame(&self, k: u64, out: &mut [u8; FRAME_BYTES]) -> Option<usize> {
        let mut start = None;
        for j in 0..FRAME_SAMPLES {
            let n = k * FRAME_SAMPLES as u64 + j as u64;
            let mut s = 0i16;
            if n >= self.offset && n < self.bursts_until {
                let m = (n - self.offset) % BURST_PERIOD;
                let burst_first = n - m;
                if m < BURST_LEN && burst_first < self.bursts_until {
                    if m == 0 {
                        start = Some(j);
                    }
                    let tone = TONES_HZ[((n - self.offset) / BURST_PERIOD % TONES_HZ.len() as u64) as usize];
                    let phase = 2.0 * std::f64::consts::PI * tone * m as f64 / SAMPLE_RATE as f64;
                    s = (TONE_AMPLITUDE * phase.sin()).round() as i16;
                }
            }
            out[2 * j..2 * j + 2].copy_from_slice(&s.to_le_bytes());
        }
        start
    }
}

/// Mean square of the `freq` component of `block` (a bin-centred tone of amplitude A gives
/// A²/2, the tone's own mean square).
pub fn goertzel_ms(block: &[i16], freq: f64) -> f64 {
    let n = block.len() as f64;
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * freq / SAMPLE_RATE as f64).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in block {
        let s0 = x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power / (n * n)
}

/// The full-level tone's mean square, the reference of the thresholds.
pub fn tone_ms() -> f64 {
    TONE_AMPLITUDE * TONE_AMPLITUDE / 2.0
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    /// Instant (µs) of the end of the sub-block where the level first crossed `on`.
    end_us: f64,
    tone: usize,
    onset_ms: f64,
    peak_ms: f64,
    more: u8,
}

/// A detected echo onset: its instant (µs) and which of `TONES_HZ` it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Onset {
    pub us: f64,
    pub tone: usize,
}

/// Finds tone onsets in a stream of 5 ms sub-blocks, `level` being the strongest of the
/// `TONES_HZ` levels (Goertzel, mean square; skipped when the sub-block's whole mean square is
/// under `off`): after at least `quiet_needed` sub-blocks in a row below `off`, the first
/// sub-block at or above `on` is the onset sub-block, and its strongest tone names the burst. The onset instant is
/// refined inside it: a tone that fills the last `m` of its 80 samples has a Goertzel amplitude
/// about `m/80` of the full tone's, so the onset is placed `sqrt(level/peak) * 5 ms` before the
/// sub-block's end, `peak` being the highest level of it and the next two sub-blocks.
pub struct OnsetDetector {
    carry: Vec<i16>,
    on: f64,
    off: f64,
    quiet_needed: u32,
    quiet_run: u32,
    /// Set by `quiet_needed` quiet sub-blocks in a row, cleared by an onset; a sub-block between
    /// `off` and `on` (the partial first sub-block of a burst) leaves it set.
    armed: bool,
    pending: Option<Pending>,
}

impl Default for OnsetDetector {
    fn default() -> Self {
        // on: 20 dB under the sent tone; off (quiet): 30 dB under; 200 ms of quiet re-arms.
        Self::new(tone_ms() / 100.0, tone_ms() / 1000.0, 40)
    }
}

impl OnsetDetector {
    pub fn new(on: f64, off: f64, quiet_needed: u32) -> Self {
        Self { carry: Vec::with_capacity(SUB_BLOCK), on, off, quiet_needed, quiet_run: 0, armed: false, pending: None }
    }

    /// Feeds one received frame (s16le) that arrived at `arrival_us`; appends the onsets
    /// (instants in µs, same clock) completed by it.
    pub fn push(&mut self, frame: &[u8], arrival_us: f64, onsets: &mut Vec<Onset>) {
        let len = frame.len() / 2;
        for j in 0..len {
            self.carry.push(i16::from_le_bytes([frame[2 * j], frame[2 * j + 1]]));
            if self.carry.len() == SUB_BLOCK {
                // This sub-block ends just after sample j of the frame.
                let end_us = arrival_us - (len - (j + 1)) as f64 * 1e6 / SAMPLE_RATE as f64;
                let levels = self.levels();
                self.carry.clear();
                self.block(levels, end_us, onsets);
            }
        }
    }

    fn levels(&self) -> [f64; 4] {
        let total = self.carry.iter().map(|&x| x as f64 * x as f64).sum::<f64>() / self.carry.len() as f64;
        if total < self.off {
            // Quieter than the quiet threshold in every band: no need to filter.
            return [0.0; 4];
        }
        TONES_HZ.map(|f| goertzel_ms(&self.carry, f))
    }

    fn block(&mut self, levels: [f64; 4], end_us: f64, onsets: &mut Vec<Onset>) {
        let (tone, level) = levels
            .iter()
            .copied()
            .enumerate()
            .fold((0, f64::MIN), |best, (i, l)| if l > best.1 { (i, l) } else { best });
        if let Some(mut p) = self.pending.take() {
            p.peak_ms = p.peak_ms.max(levels[p.tone]);
            p.more -= 1;
            if p.more == 0 {
                let frac = (p.onset_ms / p.peak_ms).sqrt().clamp(0.0, 1.0);
                let us = p.end_us - frac * SUB_BLOCK as f64 * 1e6 / SAMPLE_RATE as f64;
                onsets.push(Onset { us, tone: p.tone });
            } else {
                self.pending = Some(p);
            }
        } else if self.armed && level >= self.on {
            self.armed = false;
            self.pending = Some(Pending { end_us, tone, onset_ms: level, peak_ms: level, more: 2 });
        }
        if level < self.off {
            self.quiet_run = self.quiet_run.saturating_add(1);
            if self.quiet_run >= self.quiet_needed {
                self.armed = true;
            }
        } else {
            self.quiet_run = 0;
        }
    }
}

/// G.711 µ-law, used by the fake echo server to put the echo through the same quantisation as
/// the simulated network.
pub fn mulaw_encode(x: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = x as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exp = 7;
    let mut mask = 0x4000;
    while exp > 0 && s & mask == 0 {
        exp -= 1;
        mask >>= 1;
    }
    let mant = (s >> (exp + 3)) & 0x0f;
    !(sign | (exp << 4) | mant) as u8
}

pub fn mulaw_decode(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exp = ((u >> 4) & 0x07) as i32;
    let mant = (u & 0x0f) as i32;
    let s = (((mant << 3) + 0x84) << exp) - 0x84;
    (if sign != 0 { -s } else { s }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(samples: &[i16]) -> Vec<Vec<u8>> {
        samples.chunks(FRAME_SAMPLES).map(|c| c.iter().flat_map(|s| s.to_le_bytes()).collect()).collect()
    }

    #[test]
    fn goertzel_gives_the_tone_mean_square() {
        let tone: Vec<i16> = (0..SUB_BLOCK)
            .map(|n| (TONE_AMPLITUDE * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 16000.0).sin()) as i16)
            .collect();
        let ms = goertzel_ms(&tone, 1000.0);
        assert!((ms / tone_ms() - 1.0).abs() < 0.01, "{ms} vs {}", tone_ms());
        assert!(goertzel_ms(&[0; SUB_BLOCK], 1000.0) == 0.0);
    }

    #[test]
    fn the_tones_are_orthogonal_on_a_sub_block() {
        for (i, &f) in TONES_HZ.iter().enumerate() {
            let tone: Vec<i16> = (0..SUB_BLOCK)
                .map(|n| (TONE_AMPLITUDE * (2.0 * std::f64::consts::PI * f * n as f64 / 16000.0).sin()) as i16)
                .collect();
            for (j, &g) in TONES_HZ.iter().enumerate() {
                let rel = goertzel_ms(&tone, g) / tone_ms();
                if i == j { assert!(rel > 0.99) } else { assert!(rel < 1e-4, "{f} on {g}: {rel}") }
            }
        }
    }

    #[test]
    fn signal_starts_bursts_at_the_offset_every_second() {
        let sig = Signal { offset: 1000, bursts_until: 3 * 16000 };
        let mut starts = vec![];
        let mut buf = [0u8; FRAME_BYTES];
        for k in 0..200 {
            if let Some(j) = sig.frame(k, &mut buf) {
                starts.push(k * 320 + j as u64);
            }
        }
        assert_eq!(starts, vec![1000, 17000, 33000]);
    }

    /// A burst starting at any sample is located to well under a millisecond, whatever its
    /// position in the sub-block, also after µ-law.
    #[test]
    fn onset_is_located_within_a_fraction_of_a_sub_block() {
        for (k, start) in [6400usize, 6401, 6420, 6440, 6460, 6479, 6500, 6555, 6700].into_iter().enumerate() {
            let tone = k % TONES_HZ.len();
            for mulaw in [false, true] {
                let mut samples = vec![0i16; 16000];
                for m in 0..1600 {
                    let w = 2.0 * std::f64::consts::PI * TONES_HZ[tone] * m as f64 / 16000.0;
                    let v = (TONE_AMPLITUDE * w.sin()) as i16;
                    samples[start + m] = if mulaw { mulaw_decode(mulaw_encode(v)) } else { v };
                }
                let mut det = OnsetDetector::default();
                let mut onsets = vec![];
                // Frame k arrives at the instant of its end: (k+1) * 20 ms.
                for (k, f) in frames_of(&samples).iter().enumerate() {
                    det.push(f, (k as f64 + 1.0) * 20_000.0, &mut onsets);
                }
                assert_eq!(onsets.len(), 1, "start {start}");
                assert_eq!(onsets[0].tone, tone);
                let truth = start as f64 * 1e6 / 16000.0;
                let us = onsets[0].us;
                assert!((us - truth).abs() < 700.0, "start {start} mulaw {mulaw}: {us} vs {truth}");
            }
        }
    }

    #[test]
    fn mulaw_round_trips_closely() {
        for x in [-32768i16, -20000, -1000, -1, 0, 1, 100, 1000, 9830, 32767] {
            let y = mulaw_decode(mulaw_encode(x)) as i32;
            let err = (y - x as i32).abs();
            assert!(err <= (x as i32).abs() / 16 + 8, "{x} -> {y}");
        }
    }
}

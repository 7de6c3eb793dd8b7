//! G.722 wideband audio at 64 kbit/s (ITU-T G.722 mode 1), pure: 16 kHz 16-bit linear samples
//! <-> code octets, two samples per octet, so a 20 ms frame is 320 samples and 160 octets.
//!
//! The algorithm is the ITU-T one, integer for integer: a 24-tap quadrature mirror filter splits
//! the signal into two 8 kHz sub-bands; the lower band (0-4 kHz) is coded with 6-bit ADPCM, the
//! higher band (4-8 kHz) with 2-bit ADPCM, each with its own adaptive quantiser scale and
//! pole-zero predictor (blocks 1-6 of G.722 §3-§4, with the standard tables `QMF`, `Q6`, `QM6`,
//! `QM4`, `QM2`, `WL`, `WH`, `ILB`...). An octet carries the 2 high-band bits on top of the 6
//! low-band bits. The fixed-point arithmetic follows the reference (saturating 16-bit adds,
//! `(a * b) >> 15` products), so the codes are the ones other implementations produce and expect.
//! Checked against spandsp 0.0.6 (`libspandsp2`, the library behind baresip's and FreeSWITCH's
//! G.722) on noise, chirps, square waves and random code streams: the encoder's octets are
//! identical; the decoder's samples are identical except where spandsp's output overflows 16 bits
//! and wraps around (a full-scale click), which this decoder saturates instead. The known-answer
//! test below pins spandsp's output for one second of mixed signal.
//!
//! RTP (RFC 3551 §4.5.2): static payload type [`PAYLOAD_TYPE`] 9, `G722/8000` in SDP. The RTP
//! clock is [`RTP_CLOCK_RATE`] 8000 Hz although the audio is sampled at [`SAMPLE_RATE`] 16 kHz, an
//! error in RFC 1890 kept for compatibility: the timestamp advances by 160 per 20 ms frame, one
//! per octet, exactly as for G.711.
//!
//! Encoding and decoding run the two QMF halves and add [`CODEC_DELAY_SAMPLES`] 22 samples
//! (1.375 ms) of delay end to end.
//! Both fill the caller's buffer and never allocate; every octet is a valid code, so any byte
//! sequence decodes, and every intermediate value is clamped as the reference clamps it, so no
//! input panics or overflows.
//!
//! What this module must not do: resample, frame or packetise, conceal loss, own a socket or read
//! a clock. A lost packet is the session's to conceal; feeding the decoder the next packet after
//! a gap is allowed: the adaptive state re-converges, within 200 ms even after random garbage.

/// The static RTP payload type of G.722 (RFC 3551 table 4).
pub const PAYLOAD_TYPE: u8 = 9;
/// The RTP timestamp rate: 8000, not 16000 (RFC 3551 §4.5.2 keeps RFC 1890's mistake).
pub const RTP_CLOCK_RATE: u32 = 8000;
/// The audio sample rate the codec takes and returns.
pub const SAMPLE_RATE: u32 = 16_000;
/// Octets in a 20 ms frame at 64 kbit/s; also the RTP timestamp increment per frame.
pub const FRAME_OCTETS: usize = 160;
/// 16 kHz samples in a 20 ms frame.
pub const FRAME_SAMPLES: usize = 320;
/// End-to-end delay of encoder plus decoder, in 16 kHz samples: the two 24-tap QMFs (measured).
pub const CODEC_DELAY_SAMPLES: usize = 22;

/// QMF coefficients (G.722 table 11), half of the symmetric 24-tap filter.
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// Lower-band quantiser decision levels (table 6, scaled), indexed by magnitude interval.
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339,
    1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
/// 6-bit lower-band code of a negative difference, by interval.
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5,
    4, 0,
];
/// 6-bit lower-band code of a positive difference, by interval.
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34,
    33, 32, 0,
];
/// Lower-band log scale factor multipliers (table 12), by `RL42`.
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// The 4-bit truncated lower-band code to its magnitude class for `WL`.
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Inverse log table for the scale factors (table 14).
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025,
    3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Inverse quantiser of the 4-bit truncated lower-band code, the one the predictor adapts on.
const QM4: [i32; 16] =
    [0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0];
/// Inverse quantiser of the full 6-bit lower-band code (64 kbit/s), for the decoder's output.
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576,
    -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040,
    -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
    4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// 2-bit higher-band code of a negative / positive difference, by interval (1 or 2).
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];
/// Higher-band log scale factor multipliers, by `RH2`.
const WH: [i32; 3] = [0, -214, 798];
const RH2: [i32; 4] = [2, 1, 2, 1];
/// Inverse quantiser of the 2-bit higher-band code.
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];

/// Clamps to the 16-bit range, as the reference's saturating `add` does.
#[inline]
fn sat(x: i32) -> i32 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// One sub-band's ADPCM state: the adaptive scale factor and the pole-zero predictor.
#[derive(Debug, Clone, Copy)]
struct Band {
    /// Signal estimate (PREDIC).
    s: i32,
    /// Pole section of the estimate.
    sp: i32,
    /// Zero section of the estimate.
    sz: i32,
    /// Reconstructed signal, newest first.
    r: [i32; 3],
    /// Pole coefficients a1, a2 (index 0 unused).
    a: [i32; 3],
    /// Partially reconstructed signal, newest first.
    p: [i32; 3],
    /// Quantised differences, newest first.
    d: [i32; 7],
    /// Zero coefficients b1..b6 (index 0 unused).
    b: [i32; 7],
    /// Log scale factor.
    nb: i32,
    /// Quantiser scale factor.
    det: i32,
}

impl Band {
    const fn new(det: i32) -> Self {
        Self { s: 0, sp: 0, sz: 0, r: [0; 3], a: [0; 3], p: [0; 3], d: [0; 7], b: [0; 7], nb: 0, det }
    }

    /// Blocks 3L/3H, LOGSCL + SCALEL (or LOGSCH + SCALEH): adapts the scale factor.
    /// `shift` is 8 for the lower band, 10 for the higher; `max` its log scale ceiling.
    #[inline]
    fn adapt_scale(&mut self, multiplier: i32, shift: i32, max: i32) {
        self.nb = (((self.nb * 127) >> 7) + multiplier).clamp(0, max);
        let mantissa = ILB[((self.nb >> 6) & 31) as usize];
        let exponent = shift - (self.nb >> 11);
        // nb <= 22528 so the exponent is at least -1 and at most 10: both shifts are in range.
        let wd3 = if exponent < 0 { mantissa << -exponent } else { mantissa >> exponent };
        self.det = wd3 << 2;
    }

    /// Block 4: reconstruction, predictor adaptation and the next signal estimate, from the
    /// quantised difference `dx`.
    fn update(&mut self, dx: i32) {
        // RECONS, PARREC
        self.d[0] = dx;
        self.r[0] = sat(self.s + dx);
        self.p[0] = sat(self.sz + dx);

        // Signs: the reference tests `x >> 15` of 16-bit values, i.e. negative or not.
        let sg = |x: i32| x < 0;

        // UPPOL2
        let wd1 = sat(self.a[1] << 2);
        let wd2 = if sg(self.p[0]) == sg(self.p[1]) { sat(-wd1) } else { wd1 };
        let mut wd3 = if sg(self.p[0]) == sg(self.p[2]) { 128 } else { -128 };
        wd3 += wd2 >> 7;
        wd3 += (self.a[2] * 32512) >> 15;
        let ap2 = wd3.clamp(-12288, 12288);

        // UPPOL1
        let wd1 = if sg(self.p[0]) == sg(self.p[1]) { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        let limit = sat(15360 - ap2);
        let ap1 = sat(wd1 + wd2).clamp(-limit, limit);

        // UPZERO, then DELAYA for the zero section.
        let step = if dx == 0 { 0 } else { 128 };
        for i in (1..7).rev() {
            let wd2 = if sg(self.d[i]) == sg(dx) { step } else { -step };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.b[i] = sat(wd2 + wd3);
            self.d[i] = self.d[i - 1];
        }
        // DELAYA for the pole section.
        self.r[2] = self.r[1];
        self.r[1] = self.r[0];
        self.p[2] = self.p[1];
        self.p[1] = self.p[0];
        self.a[1] = ap1;
        self.a[2] = ap2;

        // FILTEP
        let wd1 = (self.a[1] * sat(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * sat(self.r[2] + self.r[2])) >> 15;
        self.sp = sat(wd1 + wd2);

        // FILTEZ
        let mut sz = 0;
        for i in (1..7).rev() {
            sz = sat(sz + ((self.b[i] * sat(self.d[i] + self.d[i])) >> 15));
        }
        self.sz = sz;

        // PREDIC
        self.s = sat(self.sp + self.sz);
    }

    /// Lower-band scale adaptation and predictor update from the 6-bit code's top 4 bits.
    #[inline]
    fn lower_adapt(&mut self, ril: usize) {
        let dlow = (self.det * QM4[ril]) >> 15;
        self.adapt_scale(WL[RL42[ril] as usize], 8, 18432);
        self.update(dlow);
    }

    /// Higher-band inverse quantisation, scale adaptation and predictor update; returns the
    /// quantised difference.
    #[inline]
    fn higher_adapt(&mut self, ihigh: usize) -> i32 {
        let dhigh = (self.det * QM2[ihigh]) >> 15;
        self.adapt_scale(WH[RH2[ihigh] as usize], 10, 22528);
        self.update(dhigh);
        dhigh
    }
}

/// The initial scale factors of the two bands (G.722 §6.2.1.1: DETL = 32, DETH = 8).
const fn initial_bands() -> [Band; 2] {
    [Band::new(32), Band::new(8)]
}

/// A G.722 64 kbit/s encoder: 16 kHz samples in, code octets out. One per call direction.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    /// The QMF's last 24 input samples, oldest first.
    x: [i32; 24],
    band: [Band; 2],
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    pub const fn new() -> Self {
        Self { x: [0; 24], band: initial_bands() }
    }

    /// Back to the initial state, as at the start of a call.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Encodes pairs of samples into `out`, one octet per pair: `min(samples.len() / 2, out.len())`
    /// octets, which it returns; that many pairs of samples were consumed. Feed an even number of
    /// samples (a trailing odd sample is not encoded). 320 samples make 160 octets.
    pub fn encode(&mut self, samples: &[i16], out: &mut [u8]) -> usize {
        let mut written = 0;
        for (pair, code) in samples.chunks_exact(2).zip(out.iter_mut()) {
            *code = self.encode_pair(pair[0], pair[1]);
            written += 1;
        }
        written
    }

    fn encode_pair(&mut self, first: i16, second: i16) -> u8 {
        // Transmit QMF: shift in two samples, keep one output of each sub-band.
        self.x.copy_within(2.., 0);
        self.x[22] = i32::from(first);
        self.x[23] = i32::from(second);
        let (mut sum_odd, mut sum_even) = (0i32, 0i32);
        for i in 0..12 {
            sum_odd += self.x[2 * i] * QMF[i];
            sum_even += self.x[2 * i + 1] * QMF[11 - i];
        }
        let xlow = (sum_even + sum_odd) >> 14;
        let xhigh = (sum_even - sum_odd) >> 14;

        // Lower band. SUBTRA, QUANTL: find the magnitude interval, then the code by sign.
        let low = &mut self.band[0];
        let el = sat(xlow - low.s);
        let wd = if el >= 0 { el } else { -(el + 1) };
        let mut interval = 1;
        while interval < 30 && wd >= (Q6[interval] * low.det) >> 12 {
            interval += 1;
        }
        let ilow = if el < 0 { ILN[interval] } else { ILP[interval] };
        // INVQAL on the 4 most significant bits, LOGSCL, SCALEL, block 4.
        low.lower_adapt((ilow >> 2) as usize);

        // Higher band. SUBTRA, QUANTH, INVQAH, LOGSCH, SCALEH, block 4.
        let high = &mut self.band[1];
        let eh = sat(xhigh - high.s);
        let wd = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if wd >= (564 * high.det) >> 12 { 2 } else { 1 };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
        high.higher_adapt(ihigh as usize);

        // ilow < 64 and ihigh < 4, so the octet holds both.
        ((ihigh << 6) | ilow) as u8
    }
}

/// A G.722 64 kbit/s decoder: code octets in, 16 kHz samples out. One per call direction.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    /// The receive QMF's last 24 values, oldest first.
    x: [i32; 24],
    band: [Band; 2],
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    pub const fn new() -> Self {
        Self { x: [0; 24], band: initial_bands() }
    }

    /// Back to the initial state, as at the start of a call.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Decodes octets into `out`, two samples per octet: `min(codes.len(), out.len() / 2)` octets,
    /// and returns the samples written (twice that). 160 octets make 320 samples. Every octet is
    /// a valid code.
    pub fn decode(&mut self, codes: &[u8], out: &mut [i16]) -> usize {
        let mut written = 0;
        for (&code, pair) in codes.iter().zip(out.chunks_exact_mut(2)) {
            let (first, second) = self.decode_octet(code);
            pair[0] = first;
            pair[1] = second;
            written += 2;
        }
        written
    }

    fn decode_octet(&mut self, code: u8) -> (i16, i16) {
        let ilow = usize::from(code & 0x3F);
        let ihigh = usize::from(code >> 6);

        // Lower band. INVQBL on all 6 bits for the output, RECONS, LIMIT; then the predictor
        // adapts on the top 4 bits exactly as in the encoder.
        let low = &mut self.band[0];
        let rlow = (low.s + ((low.det * QM6[ilow]) >> 15)).clamp(-16384, 16383);
        low.lower_adapt(ilow >> 2);

        // Higher band. INVQAH, RECONS, LIMIT, then adaptation.
        let high = &mut self.band[1];
        let s = high.s;
        let dhigh = high.higher_adapt(ihigh);
        let rhigh = (dhigh + s).clamp(-16384, 16383);

        // Receive QMF: shift in the sum and difference, two output samples.
        self.x.copy_within(2.., 0);
        self.x[22] = rlow + rhigh;
        self.x[23] = rlow - rhigh;
        let (mut out1, mut out2) = (0i32, 0i32);
        for i in 0..12 {
            out2 += self.x[2 * i] * QMF[i];
            out1 += self.x[2 * i + 1] * QMF[11 - i];
        }
        (sat(out1 >> 11) as i16, sat(out2 >> 11) as i16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::goertzel::{dominant_frequency, goertzel_level_db};
    use crate::test_rng::XorShift;
    use std::f64::consts::PI;

    fn tone(frequency_hz: f64, amplitude: f64, len: usize) -> Vec<i16> {
        (0..len)
            .map(|n| {
                let t = n as f64 / f64::from(SAMPLE_RATE);
                (amplitude * 32767.0 * (2.0 * PI * frequency_hz * t).sin()).round() as i16
            })
            .collect()
    }

    /// Encodes and decodes in 20 ms frames, as a call does.
    fn round_trip(input: &[i16]) -> Vec<i16> {
        let mut encoder = G722Encoder::new();
        let mut decoder = G722Decoder::new();
        let mut output = Vec::with_capacity(input.len());
        let mut codes = [0u8; FRAME_OCTETS];
        let mut samples = [0i16; FRAME_SAMPLES];
        for frame in input.chunks(FRAME_SAMPLES) {
            let octets = encoder.encode(frame, &mut codes);
            assert_eq!(octets, frame.len() / 2);
            let n = decoder.decode(&codes[..octets], &mut samples);
            assert_eq!(n, 2 * octets);
            output.extend_from_slice(&samples[..n]);
        }
        output
    }

    /// SNR in dB of `output` against `input` delayed by `delay`, from sample `skip` on (once the
    /// adaptation has settled).
    fn snr_db(input: &[i16], output: &[i16], delay: usize, skip: usize) -> f64 {
        let (mut signal, mut noise) = (0.0f64, 0.0f64);
        for n in skip..output.len() {
            let reference = f64::from(input[n - delay]);
            let error = f64::from(output[n]) - reference;
            signal += reference * reference;
            noise += error * error;
        }
        10.0 * (signal / noise.max(1e-9)).log10()
    }

    /// 64-bit FNV-1a, to pin long outputs in a line.
    fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
        bytes.into_iter().fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
    }

    #[test]
    fn frame_constants() {
        assert_eq!(FRAME_SAMPLES, 2 * FRAME_OCTETS);
        assert_eq!(FRAME_SAMPLES as u32, SAMPLE_RATE / 50);
        // One RTP timestamp unit per octet: 160 per 20 ms, as for G.711.
        assert_eq!(FRAME_OCTETS as u32, RTP_CLOCK_RATE / 50);
        assert_eq!(PAYLOAD_TYPE, 9);
    }

    /// One second of integer-generated signal (no floating point, so the same on every
    /// platform): noise stepping down through 12 levels, alternating with ±12000 square waves of
    /// rising pitch. The expected octets and samples are libspandsp 0.0.6's `g722_encode` and
    /// `g722_decode` at 64000 bit/s, options 0 (Debian `libspandsp2`, pulled in by `baresip-core`),
    /// run by a throwaway C harness on the same input; its decoded peak is 15192, so no wrap.
    #[test]
    fn known_answer_against_spandsp() {
        let mut rng = XorShift(0x6722_6722);
        let input: Vec<i16> = (0..16_000usize)
            .map(|n| {
                let segment = n / 800;
                let noise = rng.next() as i16;
                if segment % 2 == 0 {
                    noise >> (2 + (segment / 2) % 12)
                } else if (n / (3 + segment)) % 2 == 0 {
                    12_000
                } else {
                    -12_000
                }
            })
            .collect();
        let mut codes = vec![0u8; 8000];
        assert_eq!(G722Encoder::new().encode(&input, &mut codes), 8000);
        assert_eq!(
            codes[..24],
            [
                0x30, 0x84, 0x20, 0x84, 0x23, 0x85, 0x24, 0x88, 0x33, 0xbe, 0x9a, 0x32, 0x38, 0xb5, 0x2d, 0x37, 0x31,
                0xbc, 0xb9, 0x95, 0xb3, 0x99, 0x87, 0x76
            ]
        );
        assert_eq!(fnv1a(codes.iter().copied()), 0x0400_39b9_3801_3820);
        let mut output = vec![0i16; 16_000];
        assert_eq!(G722Decoder::new().decode(&codes, &mut output), 16_000);
        assert_eq!(
            output[40..56],
            [3360, 1074, 1336, 2815, 2991, 714, -99, 2130, 505, -1792, -2320, 1627, 2324, 1287, -5533, -8439]
        );
        assert_eq!(fnv1a(output.iter().flat_map(|s| s.to_le_bytes())), 0xedec_acaf_5c6b_5a83);
    }

    #[test]
    fn the_delay_is_22_samples() {
        // Low-passed noise has one correlation peak, unlike a tone, whose peaks repeat every period.
        let mut rng = XorShift(7);
        let mut previous = 0i32;
        let input: Vec<i16> = (0..16_000)
            .map(|_| {
                let next = i32::from((rng.next() as i16) >> 2);
                let smoothed = (previous + next) / 2;
                previous = next;
                smoothed as i16
            })
            .collect();
        let output = round_trip(&input);
        let snr = |delay| snr_db(&input, &output, delay, 1600);
        let best = (0..64).max_by(|&a, &b| snr(a).total_cmp(&snr(b)));
        assert_eq!(best, Some(CODEC_DELAY_SAMPLES));
        // Measured 17.3 dB: broadband noise, much of it in the 2-bit higher band, is G.722's
        // hardest input.
        assert!(snr(CODEC_DELAY_SAMPLES) > 14.0, "{:.2} dB", snr(CODEC_DELAY_SAMPLES));
    }

    #[test]
    fn sines_come_back_at_their_frequency_and_level() {
        // Measured at -6 dBFS, delay-aligned, after the first 100 ms: 57.7 dB at 440 Hz, 47.6 dB
        // at 1 kHz, 41.3 dB at 3 kHz. The floors leave ~5 dB of margin.
        for (frequency, floor) in [(440.0, 52.0), (1000.0, 42.0), (3000.0, 36.0)] {
            let input = tone(frequency, 0.5, 16_000);
            let output = round_trip(&input);
            let snr = snr_db(&input, &output, CODEC_DELAY_SAMPLES, 1600);
            assert!(snr > floor, "{frequency} Hz: SNR {snr:.2} dB");
            let tail = &output[8000..];
            let candidates = [300.0, 440.0, 700.0, 1000.0, 2000.0, 3000.0, 3500.0, 6000.0];
            assert_eq!(dominant_frequency(tail, SAMPLE_RATE, &candidates), Some(frequency as f32));
            let level = goertzel_level_db(tail, SAMPLE_RATE, frequency as f32);
            assert!((level + 6.02).abs() < 0.5, "{frequency} Hz at {level:.2} dB, not -6 dB");
        }
    }

    #[test]
    fn the_higher_band_carries_a_6_khz_tone() {
        // 2 bits per sample code the 4-8 kHz band, coarsely but enough for a steady tone: measured
        // level -6.05 dB, SNR 27.3 dB.
        let input = tone(6000.0, 0.5, 16_000);
        let output = round_trip(&input);
        let tail = &output[8000..];
        let candidates = [1000.0, 2000.0, 3000.0, 5000.0, 6000.0, 7000.0];
        assert_eq!(dominant_frequency(tail, SAMPLE_RATE, &candidates), Some(6000.0));
        let level = goertzel_level_db(tail, SAMPLE_RATE, 6000.0);
        assert!((level + 6.02).abs() < 0.5, "6 kHz at {level:.2} dB, not -6 dB");
        let snr = snr_db(&input, &output, CODEC_DELAY_SAMPLES, 1600);
        assert!(snr > 22.0, "6 kHz: SNR {snr:.2} dB");
    }

    #[test]
    fn silence_stays_silent() {
        // Measured peak: 4 (the idle-channel noise of the adapted-down quantisers).
        let output = round_trip(&[0i16; 8000]);
        assert!(output.iter().all(|&s| s.abs() <= 8), "{:?}", output.iter().max_by_key(|s| s.abs()));
        // Near-silence (a ±3 dither) stays near silence too: measured peak 13.
        let mut rng = XorShift(3);
        let dither: Vec<i16> = (0..8000).map(|_| rng.below(7) as i16 - 3).collect();
        let output = round_trip(&dither);
        assert!(output.iter().all(|&s| s.abs() <= 24), "{:?}", output.iter().max_by_key(|s| s.abs()));
    }

    #[test]
    fn any_bytes_decode_and_the_decoder_recovers() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut decoder = G722Decoder::new();
        let mut codes = [0u8; 400];
        let mut samples = [0i16; 800];
        for _ in 0..2000 {
            let len = rng.below(codes.len() + 1);
            for code in &mut codes[..len] {
                *code = rng.next() as u8;
            }
            assert_eq!(decoder.decode(&codes[..len], &mut samples), 2 * len);
        }
        // Worst cases for the adaptation: long runs of the largest codes of either sign.
        for code in [0x00, 0x04, 0x20, 0x3F, 0xC4, 0xE0, 0xFF] {
            let run = [code; 400];
            assert_eq!(decoder.decode(&run, &mut samples), 800);
        }
        // After the garbage a real stream decodes to its tone again: the scale factors and
        // predictor re-converge (measured SNR 13 dB over 50-500 ms, 47 dB from 200 ms on).
        let input = tone(1000.0, 0.5, 8000);
        let mut encoder = G722Encoder::new();
        let mut stream = vec![0u8; 4000];
        encoder.encode(&input, &mut stream);
        let mut output = vec![0i16; 8000];
        decoder.decode(&stream, &mut output);
        let tail = &output[1600..];
        assert_eq!(dominant_frequency(tail, SAMPLE_RATE, &[500.0, 1000.0, 2000.0, 6000.0]), Some(1000.0));
        let snr = snr_db(&input, &output, CODEC_DELAY_SAMPLES, 3200);
        assert!(snr > 42.0, "{snr:.2} dB after garbage");
    }

    #[test]
    fn extreme_input_encodes() {
        let mut rng = XorShift(11);
        let mut encoder = G722Encoder::new();
        let mut decoder = G722Decoder::new();
        let mut codes = [0u8; FRAME_OCTETS];
        let mut samples = [0i16; FRAME_SAMPLES];
        let square: Vec<i16> = (0..FRAME_SAMPLES).map(|n| if n % 2 == 0 { i16::MAX } else { i16::MIN }).collect();
        let frames: [Vec<i16>; 4] = [
            vec![i16::MIN; FRAME_SAMPLES],
            vec![i16::MAX; FRAME_SAMPLES],
            square,
            (0..FRAME_SAMPLES).map(|_| rng.next() as i16).collect(),
        ];
        for _ in 0..50 {
            for frame in &frames {
                assert_eq!(encoder.encode(frame, &mut codes), FRAME_OCTETS);
                assert_eq!(decoder.decode(&codes, &mut samples), FRAME_SAMPLES);
            }
        }
    }

    #[test]
    fn lengths_follow_the_shorter_buffer_and_reset_restarts() {
        let input = tone(440.0, 0.3, FRAME_SAMPLES + 1);
        let mut encoder = G722Encoder::new();
        let mut codes = [0u8; FRAME_OCTETS + 8];
        // An odd trailing sample is not encoded; a short output buffer limits the pairs taken.
        assert_eq!(encoder.encode(&input, &mut codes), FRAME_OCTETS);
        assert_eq!(encoder.encode(&input, &mut codes[..10]), 10);
        assert_eq!(encoder.encode(&input[..1], &mut codes), 0);
        assert_eq!(encoder.encode(&[], &mut codes), 0);
        let mut decoder = G722Decoder::new();
        let mut samples = [0i16; 21];
        assert_eq!(decoder.decode(&codes[..FRAME_OCTETS], &mut samples), 20);
        assert_eq!(decoder.decode(&codes[..3], &mut samples), 6);
        assert_eq!(decoder.decode(&[], &mut samples), 0);

        // Frame by frame, or all at once after a reset: the same octets and samples.
        let input = tone(1000.0, 0.5, 4 * FRAME_SAMPLES);
        let mut whole = [0u8; 4 * FRAME_OCTETS];
        encoder.reset();
        encoder.encode(&input, &mut whole);
        let mut framed = [0u8; 4 * FRAME_OCTETS];
        let mut fresh = G722Encoder::default();
        for (frame, out) in input.chunks(FRAME_SAMPLES).zip(framed.chunks_mut(FRAME_OCTETS)) {
            fresh.encode(frame, out);
        }
        assert_eq!(whole, framed);
        let mut first = [0i16; 4 * FRAME_SAMPLES];
        let mut second = [0i16; 4 * FRAME_SAMPLES];
        decoder.reset();
        decoder.decode(&whole, &mut first);
        G722Decoder::default().decode(&whole, &mut second);
        assert_eq!(first, second);
    }
}

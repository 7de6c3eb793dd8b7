//! G.711 companding, pure: µ-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8) code
//! octets <-> 16-bit linear samples (RFC 3551 §4.5.14).
//!
//! Implements ITU-T G.711 (11/88) as its reference code does (ITU-T G.191 Software Tool Library,
//! `g711.c`: `ulaw_compress`/`ulaw_expand`, `alaw_compress`/`alaw_expand`), bit for bit: encoding
//! truncates the one's complement magnitude and searches the segment; decoding returns the middle
//! of the quantisation interval. Samples are 16-bit and full scale, so µ-law spans ±32124 and A-law
//! ±32256; µ-law reads the 14 most significant bits, A-law the 12. The two silence codes are
//! [`ULAW_SILENCE`] `0xFF` (+0) and [`ALAW_SILENCE`] `0xD5` (+8). G.191 takes the one's complement
//! of a negative sample, so at µ-law's 127 negative decision thresholds it picks the next code
//! up for 4 input values where Sun's widely copied `g711.c` (Python `audioop`, SoX) does not;
//! decoding and A-law agree with it everywhere.
//!
//! Decoding is a lookup in a 256-entry table built at compile time from the reference expansion;
//! encoding is the reference segment search, ~8 shifts per sample at worst. The slice functions
//! write into the caller's buffer and never allocate.
//!
//! What this module must not do: resample, frame, or know about RTP beyond the payload type numbers.

/// The µ-law code of a zero sample (a positive zero; `0x7F` is the negative one).
pub const ULAW_SILENCE: u8 = 0xFF;
/// The A-law code of the smallest positive sample, what A-law sends for silence.
pub const ALAW_SILENCE: u8 = 0xD5;

/// The two companding laws of G.711, named by their RTP encodings (RFC 3551 table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, `PCMU/8000`, static payload type 0: North America and Japan.
    Ulaw,
    /// A-law, `PCMA/8000`, static payload type 8: the rest of the world.
    Alaw,
}

impl Law {
    /// The static RTP payload type (RFC 3551 §6).
    pub const fn payload_type(self) -> u8 {
        match self {
            Self::Ulaw => 0,
            Self::Alaw => 8,
        }
    }

    /// The law a static payload type stands for, if it is one of the two.
    pub const fn from_payload_type(payload_type: u8) -> Option<Self> {
        match payload_type {
            0 => Some(Self::Ulaw),
            8 => Some(Self::Alaw),
            _ => None,
        }
    }

    /// The SDP `rtpmap` encoding name.
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Self::Ulaw => "PCMU",
            Self::Alaw => "PCMA",
        }
    }

    /// The code to send for silence.
    pub const fn silence(self) -> u8 {
        match self {
            Self::Ulaw => ULAW_SILENCE,
            Self::Alaw => ALAW_SILENCE,
        }
    }

    /// Decodes one code octet.
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            Self::Ulaw => ulaw_to_linear(code),
            Self::Alaw => alaw_to_linear(code),
        }
    }

    /// Encodes one sample.
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            Self::Ulaw => linear_to_ulaw(sample),
            Self::Alaw => linear_to_alaw(sample),
        }
    }

    /// [`decode_ulaw`] or [`decode_alaw`].
    pub fn decode(self, codes: &[u8], out: &mut [i16]) -> usize {
        match self {
            Self::Ulaw => decode_ulaw(codes, out),
            Self::Alaw => decode_alaw(codes, out),
        }
    }

    /// [`encode_ulaw`] or [`encode_alaw`].
    pub fn encode(self, samples: &[i16], out: &mut [u8]) -> usize {
        match self {
            Self::Ulaw => encode_ulaw(samples, out),
            Self::Alaw => encode_alaw(samples, out),
        }
    }
}

/// µ-law code -> linear sample, for every code.
const ULAW_TO_LINEAR: [i16; 256] = build_table(Law::Ulaw);
/// A-law code -> linear sample, for every code.
const ALAW_TO_LINEAR: [i16; 256] = build_table(Law::Alaw);

const fn build_table(law: Law) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = match law {
            Law::Ulaw => ulaw_expand(code as u8),
            Law::Alaw => alaw_expand(code as u8),
        };
        code += 1;
    }
    table
}

/// G.191 `ulaw_expand` for one code. The code is sent inverted; bit 7 set means positive.
const fn ulaw_expand(code: u8) -> i16 {
    let inverted = !code;
    let exponent = ((inverted >> 4) & 0x07) as i32;
    let mantissa = (inverted & 0x0F) as i32;
    let step = 4 << (exponent + 1);
    let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    (if code & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

/// G.191 `alaw_expand` for one code. Even bits are inverted on the wire (XOR 0x55).
const fn alaw_expand(code: u8) -> i16 {
    let ix = ((code ^ 0x55) & 0x7F) as i32;
    let exponent = ix >> 4;
    let mut mantissa = ix & 0x0F;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 0x08;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    (if code > 127 { mantissa } else { -mantissa }) as i16
}

/// Decodes one µ-law code.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// Decodes one A-law code.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

/// Encodes one sample as µ-law: G.191 `ulaw_compress`.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let sample = i32::from(sample);
    // One's complement magnitude, 14 bits, plus the bias of 33 that makes the segments binary.
    let magnitude = if sample < 0 { !sample } else { sample };
    let biased = ((magnitude >> 2) + 33).min(0x1FFF);
    let mut rest = biased >> 6;
    let mut segment = 1;
    while rest != 0 {
        segment += 1;
        rest >>= 1;
    }
    let high_nibble = 0x08 - segment;
    let low_nibble = 0x0F - ((biased >> segment) & 0x0F);
    let code = (high_nibble << 4) | low_nibble;
    (if sample >= 0 { code | 0x80 } else { code }) as u8
}

/// Encodes one sample as A-law: G.191 `alaw_compress`.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let sample = i32::from(sample);
    // One's complement magnitude, 12 bits: 0..=2047.
    let mut ix = if sample < 0 { !sample >> 4 } else { sample >> 4 };
    if ix > 15 {
        let mut exponent = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            exponent += 1;
        }
        ix -= 16; // the leading one is implied by the segment
        ix += exponent << 4;
    }
    if sample >= 0 {
        ix |= 0x80;
    }
    (ix ^ 0x55) as u8
}

/// Decodes µ-law codes into `out`; returns how many samples were written (the shorter length).
pub fn decode_ulaw(codes: &[u8], out: &mut [i16]) -> usize {
    codes.iter().zip(out.iter_mut()).map(|(&c, o)| *o = ulaw_to_linear(c)).count()
}

/// Decodes A-law codes into `out`; returns how many samples were written (the shorter length).
pub fn decode_alaw(codes: &[u8], out: &mut [i16]) -> usize {
    codes.iter().zip(out.iter_mut()).map(|(&c, o)| *o = alaw_to_linear(c)).count()
}

/// Encodes samples as µ-law into `out`; returns how many codes were written (the shorter length).
pub fn encode_ulaw(samples: &[i16], out: &mut [u8]) -> usize {
    samples.iter().zip(out.iter_mut()).map(|(&s, o)| *o = linear_to_ulaw(s)).count()
}

/// Encodes samples as A-law into `out`; returns how many codes were written (the shorter length).
pub fn encode_alaw(samples: &[i16], out: &mut [u8]) -> usize {
    samples.iter().zip(out.iter_mut()).map(|(&s, o)| *o = linear_to_alaw(s)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The G.191 `g711.c` reference, transcribed with C's `short` arithmetic, to check the
    /// tables and encoders against something written independently of them.
    mod reference {
        pub fn ulaw_compress(lin: i16) -> u8 {
            let mut absno: i16 = if lin < 0 { ((!lin) >> 2) + 33 } else { (lin >> 2) + 33 };
            if absno > 0x1FFF {
                absno = 0x1FFF;
            }
            let mut i = absno >> 6;
            let mut segno: i16 = 1;
            while i != 0 {
                segno += 1;
                i >>= 1;
            }
            let high_nibble = 0x0008 - segno;
            let low_nibble = 0x000F - ((absno >> segno) & 0x000F);
            let mut log = (high_nibble << 4) | low_nibble;
            if lin >= 0 {
                log |= 0x0080;
            }
            log as u8
        }

        pub fn ulaw_expand(log: u8) -> i16 {
            let log = i16::from(log);
            let sign: i16 = if log < 0x0080 { -1 } else { 1 };
            let mut mantissa = !log;
            let exponent = (mantissa >> 4) & 0x0007;
            let segment = exponent + 1;
            mantissa &= 0x000F;
            let step: i16 = 4 << segment;
            sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)
        }

        pub fn alaw_compress(lin: i16) -> u8 {
            let mut ix: i16 = if lin < 0 { (!lin) >> 4 } else { lin >> 4 };
            if ix > 15 {
                let mut iexp: i16 = 1;
                while ix > 16 + 15 {
                    ix >>= 1;
                    iexp += 1;
                }
                ix -= 16;
                ix += iexp << 4;
            }
            if lin >= 0 {
                ix |= 0x0080;
            }
            (ix ^ 0x0055) as u8
        }

        pub fn alaw_expand(log: u8) -> i16 {
            let log = i16::from(log);
            let mut ix = log ^ 0x0055;
            ix &= 0x007F;
            let iexp = ix >> 4;
            let mut mant = ix & 0x000F;
            if iexp > 0 {
                mant += 16;
            }
            mant = (mant << 4) + 0x0008;
            if iexp > 1 {
                mant <<= iexp - 1;
            }
            if log > 127 { mant } else { -mant }
        }
    }

    fn all_codes() -> impl Iterator<Item = u8> {
        0..=u8::MAX
    }

    fn all_samples() -> impl Iterator<Item = i16> {
        i16::MIN..=i16::MAX
    }

    #[test]
    fn tables_and_encoders_match_the_g191_reference_everywhere() {
        for code in all_codes() {
            assert_eq!(ulaw_to_linear(code), reference::ulaw_expand(code), "µ-law {code:#04x}");
            assert_eq!(alaw_to_linear(code), reference::alaw_expand(code), "A-law {code:#04x}");
        }
        for sample in all_samples() {
            assert_eq!(linear_to_ulaw(sample), reference::ulaw_compress(sample), "µ-law {sample}");
            assert_eq!(linear_to_alaw(sample), reference::alaw_compress(sample), "A-law {sample}");
        }
    }

    #[test]
    fn known_vectors() {
        // µ-law: 0xFF and 0x7F are +0 and -0, 0x80 and 0x00 the largest magnitudes; 0xEF is the
        // first code of segment 1: (0x80 << 1) + 16 / 2 - 132 = 132.
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(ulaw_to_linear(0xEF), 132);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F, "-1 is a negative zero in one's complement");
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        // A-law: 0xD5/0x55 are ±8, the smallest magnitudes; 0xAA/0x2A the largest.
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(Law::Ulaw.silence(), 0xFF);
        assert_eq!(Law::Alaw.decode_sample(Law::Alaw.silence()), 8);
    }

    #[test]
    fn negative_ulaw_thresholds_follow_g191_not_sun() {
        // ~(-31612) >> 2 = 7902 sits below the 7903 threshold; Sun's -x >> 2 reaches it (0x00).
        assert_eq!(linear_to_ulaw(-31612), 0x01);
        assert_eq!(linear_to_ulaw(-31613), 0x00);
        assert_eq!(linear_to_ulaw(31612), 0x80);
    }

    #[test]
    fn every_code_round_trips_through_decode_and_encode() {
        for code in all_codes() {
            let back = linear_to_ulaw(ulaw_to_linear(code));
            if code == 0x7F {
                assert_eq!(back, 0xFF, "µ-law -0 comes back as +0");
            } else {
                assert_eq!(back, code, "µ-law {code:#04x}");
            }
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn quantisation_is_monotonic_and_within_half_a_step() {
        for law in [Law::Ulaw, Law::Alaw] {
            let mut previous = i16::MIN;
            for sample in all_samples() {
                let decoded = law.decode_sample(law.encode_sample(sample));
                assert!(decoded >= previous, "{law:?}: {sample} decodes to {decoded} below {previous}");
                previous = decoded;
                // The largest step is 1024 (µ-law) or 512 (A-law); beyond full scale it clips.
                let error = (i32::from(sample) - i32::from(decoded)).abs();
                let clip = i32::from(sample).abs() > 32124;
                assert!(clip || error <= 1024 / 2 + 4, "{law:?}: {sample} -> {decoded}");
            }
        }
        // Decoded codes, ordered by value, are all distinct apart from µ-law's two zeros.
        let mut ulaw: Vec<i16> = all_codes().map(ulaw_to_linear).collect();
        ulaw.sort_unstable();
        ulaw.dedup();
        assert_eq!(ulaw.len(), 255);
        let mut alaw: Vec<i16> = all_codes().map(alaw_to_linear).collect();
        alaw.sort_unstable();
        alaw.dedup();
        assert_eq!(alaw.len(), 256);
    }

    #[test]
    fn a_1_khz_sine_survives_with_more_than_35_db_snr() {
        const N: usize = 8000;
        let input: Vec<i16> = (0..N)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 8000.0 + 0.3;
                (16_000.0 * phase.sin()).round() as i16
            })
            .collect();
        for law in [Law::Ulaw, Law::Alaw] {
            let mut codes = vec![0u8; N];
            let mut output = vec![0i16; N];
            assert_eq!(law.encode(&input, &mut codes), N);
            assert_eq!(law.decode(&codes, &mut output), N);
            let signal: f64 = input.iter().map(|&x| f64::from(x).powi(2)).sum();
            let noise: f64 = input.iter().zip(&output).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum();
            let snr_db = 10.0 * (signal / noise).log10();
            assert!(snr_db > 35.0, "{law:?}: SNR {snr_db:.1} dB");
        }
    }

    #[test]
    fn slice_functions_stop_at_the_shorter_buffer() {
        let mut out = [0i16; 2];
        assert_eq!(decode_ulaw(&[0x00, 0xFF, 0x80], &mut out), 2);
        assert_eq!(out, [-32124, 0]);
        let mut codes = [0u8; 4];
        assert_eq!(encode_alaw(&[0, -1], &mut codes), 2);
        assert_eq!(codes, [0xD5, 0x55, 0, 0]);
    }

    #[test]
    fn payload_types() {
        assert_eq!(Law::from_payload_type(0), Some(Law::Ulaw));
        assert_eq!(Law::from_payload_type(8), Some(Law::Alaw));
        assert_eq!(Law::from_payload_type(9), None);
        assert_eq!(Law::Alaw.payload_type(), 8);
        assert_eq!(Law::Ulaw.encoding_name(), "PCMU");
    }
}

//! Tone measurement: the power of one frequency in a block of samples (the Goertzel algorithm,
//! generalised to any frequency, not only FFT bins), and which of a few candidate frequencies
//! dominates. Tests use it to assert on what a call actually carried ("the agent hears 1 kHz");
//! it is cheap enough for DTMF-style detection on live audio.
//!
//! Power is normalised to full scale: a sine of amplitude `A` (as a fraction of 32768) measures
//! `A² / 2`, its mean square, when the block holds a whole number of its periods; 0.5 is a
//! full-scale tone (-3.01 dB re a full-scale square wave). Off a whole number of periods the
//! rectangular window leaks: keep blocks long (100 ms and more) or pick lengths that fit.
//!
//! What this module must not do: allocate, or decide thresholds for its callers.

use std::f64::consts::PI;

/// Mean-square power of `frequency_hz` in `samples` taken at `sample_rate_hz`, full scale = 1.
/// Zero for an empty block.
pub fn goertzel_power(samples: &[i16], sample_rate_hz: u32, frequency_hz: f32) -> f64 {
    if samples.is_empty() || sample_rate_hz == 0 {
        return 0.0;
    }
    let omega = 2.0 * PI * f64::from(frequency_hz) / f64::from(sample_rate_hz);
    let coeff = 2.0 * omega.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    // |X(ω)|², whatever ω: the Goertzel output's magnitude does not depend on the final phase term.
    let magnitude_sq = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    let n = samples.len() as f64;
    2.0 * magnitude_sq / (n * n)
}

/// [`goertzel_power`] in dB relative to a full-scale sine (0 dB = amplitude 32768).
pub fn goertzel_level_db(samples: &[i16], sample_rate_hz: u32, frequency_hz: f32) -> f64 {
    10.0 * (goertzel_power(samples, sample_rate_hz, frequency_hz) / 0.5).max(1e-30).log10()
}

/// The candidate with the most power, or `None` when there are no candidates or none has any
/// power at all (an all-zero block has no dominant frequency).
pub fn dominant_frequency(samples: &[i16], sample_rate_hz: u32, candidates: &[f32]) -> Option<f32> {
    candidates
        .iter()
        .map(|&f| (f, goertzel_power(samples, sample_rate_hz, f)))
        .filter(|&(_, power)| power > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(f, _)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frequency_hz: f64, sample_rate_hz: u32, amplitude: f64, len: usize) -> Vec<i16> {
        (0..len)
            .map(|n| {
                let t = n as f64 / f64::from(sample_rate_hz);
                (amplitude * 32768.0 * (2.0 * PI * frequency_hz * t).sin()).round() as i16
            })
            .collect()
    }

    #[test]
    fn measures_the_mean_square_of_a_tone() {
        let samples = tone(1000.0, 16_000, 0.5, 1600);
        let power = goertzel_power(&samples, 16_000, 1000.0);
        assert!((power - 0.125).abs() < 1e-4, "{power}");
        assert!((goertzel_level_db(&samples, 16_000, 1000.0) + 6.02).abs() < 0.01);
        assert!(goertzel_power(&samples, 16_000, 1500.0) < 1e-8);
        // Any frequency, not only bins: half a bin (0.5 Hz in 1 s) off the tone measures the
        // rectangular window's scalloping loss, 20·log10(2/π) = -3.92 dB.
        let second = tone(1000.0, 16_000, 0.5, 16_000);
        let off_bin = goertzel_level_db(&second, 16_000, 1000.5);
        assert!((off_bin - (-6.02 - 3.92)).abs() < 0.05, "{off_bin}");
    }

    #[test]
    fn picks_the_dominant_candidate() {
        let mut mix = tone(440.0, 8000, 0.2, 4000);
        for (m, t) in mix.iter_mut().zip(tone(1000.0, 8000, 0.4, 4000)) {
            *m += t;
        }
        let candidates = [440.0, 697.0, 1000.0, 1209.0];
        assert_eq!(dominant_frequency(&mix, 8000, &candidates), Some(1000.0));
        assert_eq!(dominant_frequency(&tone(440.0, 8000, 0.1, 800), 8000, &candidates), Some(440.0));
        assert_eq!(dominant_frequency(&[0; 800], 8000, &candidates), None);
        assert_eq!(dominant_frequency(&mix, 8000, &[]), None);
        assert_eq!(goertzel_power(&[], 8000, 1000.0), 0.0);
    }
}

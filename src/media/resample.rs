//! 8 kHz <-> 16 kHz for G.711 calls: one 20 ms frame in, one 20 ms frame out, per call.
//!
//! Wraps rubato 5's synchronous FFT resampler with both chunk sizes fixed
//! (`Fft::new(8000, 16000, 160, 1, FixedSync::Both)` and `Fft::new(16000, 8000, 320, 1, ..)`):
//! flat across the telephone band, images and aliases below -140 dB, 10 ms of delay each way, 1-2 µs
//! per frame (shared/reference/voice-sip-rtp.md §3.3). Samples are `i16` at the edges and `f32`
//! inside, converted in buffers allocated once; the way back rounds and clamps.
//!
//! [`Upsampler::reset`] / [`Downsampler::reset`] forget the filter state; the session calls them on
//! `clear` so the tail of an interrupted reply does not leak into the next one.
//!
//! What this module must not do: allocate per frame, read a clock, or buffer more than rubato's
//! own overlap (the frame counts in and out are fixed, so no FIFO is needed).

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::frame::{FRAME_SAMPLES, NARROWBAND_FRAME_SAMPLES, NARROWBAND_SAMPLE_RATE_HZ, SAMPLE_RATE_HZ};

/// A mono FFT resampler that turns exactly `IN` samples into exactly `OUT`.
struct FixedRatio<const IN: usize, const OUT: usize> {
    fft: Fft<f32>,
    input: [f32; IN],
    output: [f32; OUT],
}

impl<const IN: usize, const OUT: usize> FixedRatio<IN, OUT> {
    fn new(rate_in_hz: u32, rate_out_hz: u32) -> Self {
        let fft = Fft::<f32>::new(rate_in_hz as usize, rate_out_hz as usize, IN, 1, FixedSync::Both)
            .expect("invariant: both rates are non-zero and IN is a whole number of rate_in/gcd blocks");
        // With FixedSync::Both the chunk sizes never change after construction, so checking them
        // once here is what makes `process` infallible.
        assert_eq!((fft.input_frames_next(), fft.output_frames_next()), (IN, OUT), "invariant: fixed chunk sizes");
        Self { fft, input: [0.0; IN], output: [0.0; OUT] }
    }

    fn process(&mut self, input: &[i16; IN], output: &mut [i16; OUT]) {
        for (f, &s) in self.input.iter_mut().zip(input) {
            *f = f32::from(s) / 32768.0;
        }
        let adapter_in = SequentialSlice::new(&self.input[..], 1, IN).expect("invariant: IN frames of one channel");
        let mut adapter_out =
            SequentialSlice::new_mut(&mut self.output[..], 1, OUT).expect("invariant: OUT frames of one channel");
        let (read, written) = self
            .fft
            .process_into_buffer(&adapter_in, &mut adapter_out, None)
            .expect("invariant: buffers sized to the fixed chunk sizes checked in new()");
        debug_assert_eq!((read, written), (IN, OUT));
        for (s, &f) in output.iter_mut().zip(&self.output) {
            // Round half away from zero without `f32::round`, which is a libm call per sample
            // unless the target has SSE4.1; this form vectorises. `as` saturates (and maps NaN
            // to 0), the clamp says so explicitly.
            let scaled = (f * 32768.0).clamp(-32768.0, 32767.0);
            *s = (scaled + 0.5f32.copysign(scaled)) as i16;
        }
    }
}

/// 8 kHz -> 16 kHz, 160 samples in, 320 out: network audio on its way to the agent.
pub struct Upsampler(FixedRatio<NARROWBAND_FRAME_SAMPLES, FRAME_SAMPLES>);

impl Default for Upsampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Upsampler {
    pub fn new() -> Self {
        Self(FixedRatio::new(NARROWBAND_SAMPLE_RATE_HZ, SAMPLE_RATE_HZ))
    }

    /// One 20 ms frame.
    pub fn process(&mut self, input: &[i16; NARROWBAND_FRAME_SAMPLES], output: &mut [i16; FRAME_SAMPLES]) {
        self.0.process(input, output);
    }

    /// Forgets everything heard so far; the next output starts from silence.
    pub fn reset(&mut self) {
        self.0.fft.reset();
    }

    /// How late an input sample comes out, in output (16 kHz) samples: 160, i.e. 10 ms.
    pub fn delay_samples(&self) -> usize {
        self.0.fft.output_delay()
    }
}

/// 16 kHz -> 8 kHz, 320 samples in, 160 out: agent audio on its way to the network.
pub struct Downsampler(FixedRatio<FRAME_SAMPLES, NARROWBAND_FRAME_SAMPLES>);

impl Default for Downsampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Downsampler {
    pub fn new() -> Self {
        Self(FixedRatio::new(SAMPLE_RATE_HZ, NARROWBAND_SAMPLE_RATE_HZ))
    }

    /// One 20 ms frame.
    pub fn process(&mut self, input: &[i16; FRAME_SAMPLES], output: &mut [i16; NARROWBAND_FRAME_SAMPLES]) {
        self.0.process(input, output);
    }

    /// Forgets everything heard so far (barge-in `clear`); the next output starts from silence.
    pub fn reset(&mut self) {
        self.0.fft.reset();
    }

    /// How late an input sample comes out, in output (8 kHz) samples: 80, i.e. 10 ms.
    pub fn delay_samples(&self) -> usize {
        self.0.fft.output_delay()
    }
}

impl std::fmt::Debug for Upsampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upsampler").field("delay_samples", &self.delay_samples()).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Downsampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downsampler").field("delay_samples", &self.delay_samples()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::goertzel::{goertzel_level_db, goertzel_power};
    use std::f64::consts::PI;

    fn tone(frequency_hz: f64, sample_rate_hz: u32, amplitude: f64, len: usize) -> Vec<i16> {
        (0..len)
            .map(|n| {
                let t = n as f64 / f64::from(sample_rate_hz);
                (amplitude * 32768.0 * (2.0 * PI * frequency_hz * t).sin()).round() as i16
            })
            .collect()
    }

    fn upsample_all(up: &mut Upsampler, input: &[i16]) -> Vec<i16> {
        let mut out = Vec::with_capacity(input.len() * 2);
        let mut frame = [0i16; FRAME_SAMPLES];
        for chunk in input.chunks_exact(NARROWBAND_FRAME_SAMPLES) {
            up.process(chunk.try_into().expect("160"), &mut frame);
            out.extend_from_slice(&frame);
        }
        out
    }

    fn downsample_all(down: &mut Downsampler, input: &[i16]) -> Vec<i16> {
        let mut out = Vec::with_capacity(input.len() / 2);
        let mut frame = [0i16; NARROWBAND_FRAME_SAMPLES];
        for chunk in input.chunks_exact(FRAME_SAMPLES) {
            down.process(chunk.try_into().expect("320"), &mut frame);
            out.extend_from_slice(&frame);
        }
        out
    }

    #[test]
    fn delays_are_10_ms_each_way() {
        assert_eq!(Upsampler::new().delay_samples(), 160);
        assert_eq!(Downsampler::new().delay_samples(), 80);
    }

    #[test]
    fn a_1_khz_tone_comes_back_from_up_and_down_sampling_unchanged() {
        let input = tone(1000.0, 8000, 0.5, 8000);
        let mut up = Upsampler::new();
        let mut down = Downsampler::new();
        let wide = upsample_all(&mut up, &input);
        let back = downsample_all(&mut down, &wide);
        // 160 samples at 16 kHz up, then 80 at 8 kHz down: 160 samples at 8 kHz in all.
        let delay = up.delay_samples() / 2 + down.delay_samples();
        assert_eq!(delay, 160);
        // Skip the first frame: the tone's abrupt start rings through the filters for ~20 ms.
        let measured_in = &input[160..4160];
        let measured_out = &back[160 + delay..4160 + delay];
        let gain_db = goertzel_level_db(measured_out, 8000, 1000.0) - goertzel_level_db(measured_in, 8000, 1000.0);
        assert!(gain_db.abs() < 0.5, "gain {gain_db:.3} dB");
        let tone_power = goertzel_power(measured_out, 8000, 1000.0);
        for other in [250.0, 500.0, 1500.0, 2000.0, 3000.0, 3500.0] {
            let ratio_db = 10.0 * (goertzel_power(measured_out, 8000, other) / tone_power).log10();
            assert!(ratio_db < -60.0, "{other} Hz at {ratio_db:.1} dB relative to 1 kHz");
        }
        // And sample by sample, after the delay, the waveform is the same (measured: exactly).
        let worst = measured_in.iter().zip(measured_out).map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs()).max();
        assert!(worst.is_some_and(|w| w <= 2), "worst sample error {worst:?}");
        // At 16 kHz the tone is also where it should be, at the same level.
        let wide_level = goertzel_level_db(&wide[320..8320], 16_000, 1000.0);
        assert!((wide_level - goertzel_level_db(measured_in, 8000, 1000.0)).abs() < 0.5);
    }

    #[test]
    fn upsampling_a_3_khz_tone_leaves_no_image_at_5_khz() {
        let input = tone(3000.0, 8000, 0.5, 8000);
        let wide = upsample_all(&mut Upsampler::new(), &input);
        let steady = &wide[320..320 + 8000];
        let wanted = goertzel_level_db(steady, 16_000, 3000.0);
        let image = goertzel_level_db(steady, 16_000, 5000.0);
        assert!((wanted - goertzel_level_db(&input, 8000, 3000.0)).abs() < 0.5, "3 kHz at {wanted:.2} dB");
        assert!(image - wanted < -60.0, "image at {:.1} dB", image - wanted);
    }

    #[test]
    fn downsampling_a_5_khz_tone_does_not_fold_it_to_3_khz() {
        let input = tone(5000.0, 16_000, 0.5, 16_000);
        let narrow = downsample_all(&mut Downsampler::new(), &input);
        let alias = goertzel_level_db(&narrow[160..], 8000, 3000.0);
        assert!(alias < -60.0, "alias at {alias:.1} dBFS");
    }

    #[test]
    fn reset_makes_silence_come_out_as_silence() {
        let loud = tone(1000.0, 8000, 0.9, NARROWBAND_FRAME_SAMPLES);
        let loud: &[i16; NARROWBAND_FRAME_SAMPLES] = loud[..].try_into().expect("160");
        let silent = [0i16; NARROWBAND_FRAME_SAMPLES];
        let mut out = [0i16; FRAME_SAMPLES];

        let mut up = Upsampler::new();
        up.process(loud, &mut out);
        up.process(&silent, &mut out);
        assert!(out.iter().any(|&s| s.abs() > 1000), "without reset the tail leaks");
        up.process(loud, &mut out);
        up.reset();
        up.process(&silent, &mut out);
        assert_eq!(out, [0; FRAME_SAMPLES]);

        let loud_wide = tone(1000.0, 16_000, 0.9, FRAME_SAMPLES);
        let mut down = Downsampler::new();
        let mut narrow = [0i16; NARROWBAND_FRAME_SAMPLES];
        down.process(loud_wide[..].try_into().expect("320"), &mut narrow);
        down.reset();
        down.process(&[0; FRAME_SAMPLES], &mut narrow);
        assert_eq!(narrow, [0; NARROWBAND_FRAME_SAMPLES]);
    }

    #[test]
    fn full_scale_input_clamps_instead_of_wrapping() {
        // A full-scale square wave overshoots after band-limiting (Gibbs); the output must clamp.
        let square: Vec<i16> = (0..1600).map(|n| if (n / 4) % 2 == 0 { i16::MAX } else { i16::MIN }).collect();
        let wide = upsample_all(&mut Upsampler::new(), &square);
        assert!(wide.contains(&i16::MAX) && wide.contains(&i16::MIN));
        // Wrapping would put a large negative sample right after a large positive one.
        assert!(wide.windows(2).all(|w| (i32::from(w[0]) - i32::from(w[1])).abs() < 60_000));
    }

    #[test]
    fn resamplers_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<Upsampler>();
        send::<Downsampler>();
    }
}

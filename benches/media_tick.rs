//! The audio work of one call's 20 ms tick on the simulated network, both directions, as the
//! call task does it: the agent's 16 kHz frame downsampled to 8 kHz (rubato `Fft`, 320 -> 160)
//! and µ-law encoded towards the network, the network's µ-law frame decoded and upsampled back
//! to 16 kHz (160 -> 320) towards the agent. Sockets, channels and wake-ups are not included
//! (see `tools/voice-load/examples/socket_floor.rs` for those).
//! Run: `cargo bench --bench media_tick`.

use criterion::{Criterion, criterion_group, criterion_main};

use agentline::media::frame::{FRAME_SAMPLES, NARROWBAND_FRAME_SAMPLES};
use agentline::media::g711::Law;
use agentline::media::resample::{Downsampler, Upsampler};

fn tone(n: usize) -> Vec<i16> {
    (0..n).map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 1000.0 / 16_000.0).sin() * 9830.0) as i16).collect()
}

fn bench(c: &mut Criterion) {
    let speech = tone(FRAME_SAMPLES * 50);
    let mut down = Downsampler::new();
    let mut up = Upsampler::new();
    let mut narrow = [0i16; NARROWBAND_FRAME_SAMPLES];
    let mut codes = [0u8; NARROWBAND_FRAME_SAMPLES];
    let mut back = [0i16; NARROWBAND_FRAME_SAMPLES];
    let mut wide = [0i16; FRAME_SAMPLES];
    let mut k = 0usize;
    c.bench_function("media tick: 16k -> 8k -> PCMU -> 8k -> 16k, one 20 ms frame each way", |b| {
        b.iter(|| {
            let frame: &[i16; FRAME_SAMPLES] =
                speech[k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES].try_into().expect("frame");
            k = (k + 1) % 50;
            down.process(frame, &mut narrow);
            Law::Ulaw.encode(&narrow, &mut codes);
            Law::Ulaw.decode(&codes, &mut back);
            up.process(&back, &mut wide);
            std::hint::black_box(&wide);
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

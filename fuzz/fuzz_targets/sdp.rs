//! The `sdp` target: see `fuzz/checks/sdp.rs`, whose checks the corpus replay in
//! `tests/fuzz_corpus.rs` runs too.

#![no_main]

#[path = "../checks/sdp.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));

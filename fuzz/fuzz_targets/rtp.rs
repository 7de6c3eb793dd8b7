//! The `rtp` target: see `fuzz/checks/rtp.rs`, whose checks the corpus replay in
//! `tests/fuzz_corpus.rs` runs too.

#![no_main]

#[path = "../checks/rtp.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));

//! The `sip_message` target: see `fuzz/checks/sip_message.rs`, whose checks the corpus replay in
//! `tests/fuzz_corpus.rs` runs too.

#![no_main]

#[path = "../checks/sip_message.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));

//! The `smpp_pdu` target: see `fuzz/checks/smpp_pdu.rs`, whose checks the corpus replay in
//! `tests/fuzz_corpus.rs` runs too.

#![no_main]

#[path = "../checks/smpp_pdu.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));

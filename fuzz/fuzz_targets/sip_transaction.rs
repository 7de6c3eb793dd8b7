//! The `sip_transaction` target: see `fuzz/checks/sip_transaction.rs`, whose checks the corpus replay in
//! `tests/fuzz_corpus.rs` runs too.

#![no_main]

#[path = "../checks/sip_transaction.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));

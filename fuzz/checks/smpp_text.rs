//! Checks of the `smpp_text` fuzz target, shared with the corpus replay in
//! `tests/fuzz_corpus.rs` (both include this file with `#[path]`).
//!
//! The first byte is a `data_coding` (for decoding) and a concatenation reference (for
//! splitting); the rest is a `short_message` to decode and, read as UTF-8 (invalid sequences
//! become U+FFFD), a text to split. Decoding never panics; splitting never panics, keeps every
//! part within 6 + 153 septets (GSM-7) or 6 + 134 octets (UCS-2), agrees with the planner on the
//! part count, and the parts decode back to the text.

use agentline::telco::smpp::gsm7;
use agentline::telco::smpp::segments::{self, ESM_CLASS_UDHI, MAX_PARTS, TooManyParts};
use agentline::telco::sms_encoding::{self, SmsEncoding};

pub fn check(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let _ = gsm7::decode_short_message(first, rest);
    check_split(&String::from_utf8_lossy(rest), first);
}

fn check_split(text: &str, reference: u8) {
    let (plan_encoding, plan_parts) = sms_encoding::plan(text);
    let e = match segments::split(text, reference) {
        Ok(e) => e,
        Err(TooManyParts { parts }) => {
            assert!(parts > MAX_PARTS, "refused {parts} parts");
            assert_eq!(u32::try_from(parts).ok(), Some(plan_parts), "part count agrees with the planner");
            return;
        }
    };
    assert_eq!(e.encoding, plan_encoding, "encoding agrees with the planner");
    assert_eq!(u32::try_from(e.parts.len()).ok(), Some(plan_parts), "part count agrees with the planner");
    let (data_coding, max_body) = match e.encoding {
        SmsEncoding::Gsm7 => (gsm7::DATA_CODING_DEFAULT, 153),
        SmsEncoding::Ucs2 => (gsm7::DATA_CODING_UCS2, 134),
    };
    assert_eq!(e.data_coding, data_coding);
    let body: Vec<u8> = if let [single] = e.parts.as_slice() {
        assert_eq!(e.esm_class, 0, "a single part carries no UDH");
        assert!(single.len() <= if data_coding == gsm7::DATA_CODING_UCS2 { 140 } else { 160 });
        single.clone()
    } else {
        assert_eq!(e.esm_class, ESM_CLASS_UDHI);
        let count = u8::try_from(e.parts.len()).expect("at most MAX_PARTS parts");
        let mut body = Vec::new();
        let mut each = String::new();
        for (i, part) in e.parts.iter().enumerate() {
            assert!((6 + 1..=6 + max_body).contains(&part.len()), "part {i} has {} octets", part.len());
            let seq = u8::try_from(i + 1).expect("at most MAX_PARTS parts");
            assert_eq!(part[..6], [0x05, 0x00, 0x03, reference, count, seq], "UDH of part {i}");
            body.extend_from_slice(&part[6..]);
            each.push_str(&gsm7::decode_short_message(e.data_coding, &part[6..]));
        }
        // Each part decodes on its own (no ESC or surrogate pair split across parts).
        assert_eq!(each, text, "the parts, decoded one by one, give back the text");
        body
    };
    assert_eq!(gsm7::decode_short_message(e.data_coding, &body), text, "the parts decode back to the text");
}

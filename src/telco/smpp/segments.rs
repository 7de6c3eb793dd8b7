//! Outbound text -> `submit_sm` parts: GSM-7 unpacked when every character fits, UCS-2
//! otherwise; one part when it fits (160 septets / 70 UTF-16 units), else concatenated parts
//! carrying an 8-bit-reference UDH (`05 00 03 ref total seq`, esm_class |= 0x40) of at most
//! 153 septets / 67 units, never splitting an ESC pair or a surrogate pair (3GPP TS 23.040
//! §9.2.3.24.1). Pure; the segment count always equals `sms_encoding::plan`.

use super::gsm7;
use crate::telco::sms_encoding::{
    GSM7_PART_SEPTETS, GSM7_SINGLE_SEPTETS, SmsEncoding, UCS2_PART_UNITS, UCS2_SINGLE_UNITS,
};

/// esm_class bit: short_message starts with a user data header.
pub const ESM_CLASS_UDHI: u8 = 0x40;
/// Parts a message may have at most (the UDH counts them in one octet).
pub const MAX_PARTS: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub encoding: SmsEncoding,
    pub data_coding: u8,
    pub esm_class: u8,
    /// Each part's `short_message`, UDH included when there are several.
    pub parts: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message needs {parts} parts; at most {MAX_PARTS} can be concatenated")]
pub struct TooManyParts {
    pub parts: usize,
}

/// Splits `text` for sending; `reference` ties the parts together at the handset.
pub fn split(text: &str, reference: u8) -> Result<Encoded, TooManyParts> {
    // Units: one entry per character, its encoded bytes and its cost in septets / UTF-16 units.
    let (encoding, data_coding, single, per_part, units): (_, _, _, _, Vec<(Vec<u8>, usize)>) =
        match text.chars().map(gsm7::encode_char).collect::<Option<Vec<_>>>() {
            Some(chars) => (
                SmsEncoding::Gsm7,
                gsm7::DATA_CODING_DEFAULT,
                GSM7_SINGLE_SEPTETS,
                GSM7_PART_SEPTETS,
                chars.into_iter().map(|(s, n)| (s[..n].to_vec(), n)).collect(),
            ),
            None => (
                SmsEncoding::Ucs2,
                gsm7::DATA_CODING_UCS2,
                UCS2_SINGLE_UNITS,
                UCS2_PART_UNITS,
                text.chars().map(|c| (gsm7::encode_ucs2(c.encode_utf8(&mut [0; 4])), c.len_utf16())).collect(),
            ),
        };
    let total: usize = units.iter().map(|(_, cost)| cost).sum();
    if total <= single {
        let body = units.into_iter().flat_map(|(bytes, _)| bytes).collect();
        return Ok(Encoded { encoding, data_coding, esm_class: 0, parts: vec![body] });
    }
    let mut bodies: Vec<Vec<u8>> = vec![Vec::new()];
    let mut used = 0;
    for (bytes, cost) in units {
        if used + cost > per_part {
            bodies.push(Vec::new());
            used = 0;
        }
        used += cost;
        bodies.last_mut().expect("invariant: bodies starts non-empty").extend_from_slice(&bytes);
    }
    if bodies.len() > MAX_PARTS {
        return Err(TooManyParts { parts: bodies.len() });
    }
    let count = bodies.len() as u8;
    let parts = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut part = Vec::with_capacity(6 + body.len());
            part.extend_from_slice(&[0x05, 0x00, 0x03, reference, count, i as u8 + 1]);
            part.extend_from_slice(&body);
            part
        })
        .collect();
    Ok(Encoded { encoding, data_coding, esm_class: ESM_CLASS_UDHI, parts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telco::sms_encoding::plan;

    fn reassemble(e: &Encoded) -> String {
        let body: Vec<u8> = if e.parts.len() == 1 && e.esm_class == 0 {
            e.parts[0].clone()
        } else {
            e.parts.iter().flat_map(|p| p[6..].to_vec()).collect()
        };
        gsm7::decode_short_message(e.data_coding, &body)
    }

    #[test]
    fn single_parts_carry_no_udh() {
        let e = split("Your code is 123456", 7).expect("fits");
        assert_eq!((e.encoding, e.esm_class, e.parts.len()), (SmsEncoding::Gsm7, 0, 1));
        assert_eq!(e.parts[0].len(), 19);
        let u = split("Привет", 7).expect("fits");
        assert_eq!((u.data_coding, u.parts[0].len()), (gsm7::DATA_CODING_UCS2, 12));
    }

    #[test]
    fn long_messages_split_with_udh_and_reassemble() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(9); // 405 septets
        let e = split(&text, 0xAB).expect("splits");
        assert_eq!(e.esm_class, ESM_CLASS_UDHI);
        assert_eq!(e.parts.len(), 3);
        for (i, p) in e.parts.iter().enumerate() {
            assert_eq!(&p[..6], &[0x05, 0x00, 0x03, 0xAB, 3, i as u8 + 1]);
            assert!(p.len() <= 6 + 153);
        }
        assert_eq!(reassemble(&e), text);
    }

    #[test]
    fn escape_and_surrogate_pairs_are_never_split() {
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(20));
        let e = split(&text, 1).expect("splits");
        assert_eq!(e.parts[0].len(), 6 + 152, "the ESC pair moved to part 2");
        assert_eq!(&e.parts[1][6..8], &[0x1B, 0x65]);
        assert_eq!(reassemble(&e), text);
        let emoji = "😀".repeat(40);
        let u = split(&emoji, 2).expect("splits");
        assert!(u.parts.iter().all(|p| (p.len() - 6) % 4 == 0), "whole surrogate pairs per part");
        assert_eq!(reassemble(&u), emoji);
    }

    #[test]
    fn part_counts_match_the_planner() {
        for text in [
            "",
            "a",
            &"a".repeat(160),
            &"a".repeat(161),
            &"€".repeat(81),
            &"ж".repeat(135),
            &"😀".repeat(67),
            &"x".repeat(1600),
        ] {
            let e = split(text, 0).expect("splits");
            assert_eq!(e.parts.len() as u32, plan(text).1, "{}", text.len());
        }
        assert_eq!(split(&"ж".repeat(67 * 256), 0), Err(TooManyParts { parts: 256 }));
    }
}

//! Text <-> SMPP `short_message` octets for the three codings an ESME meets (3GPP TS 23.038):
//! GSM 7-bit default alphabet sent unpacked (one septet per octet, `data_coding` 0x00, the
//! usual SMPP form), Latin-1 (0x03) and UCS-2 big-endian (0x08). Extension characters travel
//! as ESC (0x1B) + code. The alphabet is `sms_encoding`'s table, the one that plans segments,
//! so what is planned as GSM-7 is what encodes as GSM-7. Pure; decoding never fails: an
//! unmappable code becomes U+FFFD.

use crate::telco::sms_encoding::{GSM7_BASIC as BASIC, GSM7_ESCAPE as ESC, GSM7_EXTENSION as EXTENSION};

pub const DATA_CODING_DEFAULT: u8 = 0x00;
pub const DATA_CODING_LATIN1: u8 = 0x03;
pub const DATA_CODING_UCS2: u8 = 0x08;

/// The septets of one character: one, or ESC + code; `None` if not in GSM-7.
pub use crate::telco::sms_encoding::gsm7_encode_char as encode_char;

/// The whole text as unpacked septets, or `None` if any character needs UCS-2.
pub fn encode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let (septets, n) = encode_char(c)?;
        out.extend_from_slice(&septets[..n]);
    }
    Some(out)
}

/// UTF-16 big-endian.
pub fn encode_ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Decodes unpacked septets (values above 0x7F are not septets: U+FFFD).
pub fn decode(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut iter = septets.iter().copied();
    while let Some(s) = iter.next() {
        if s == ESC {
            match iter.next() {
                Some(code) => {
                    out.push(EXTENSION.iter().find(|(c, _)| *c == code).map_or('\u{fffd}', |(_, ch)| *ch));
                }
                None => out.push('\u{fffd}'),
            }
        } else {
            out.push(BASIC.get(usize::from(s)).copied().unwrap_or('\u{fffd}'));
        }
    }
    out
}

/// Decodes a `short_message` by its `data_coding`: GSM-7 (0x00, also 0x01 IA5 treated as
/// GSM-7 by most SMSCs), Latin-1 (0x03), UCS-2 (0x08; an odd trailing byte is U+FFFD);
/// other codings are read as Latin-1, the least destructive guess.
pub fn decode_short_message(data_coding: u8, bytes: &[u8]) -> String {
    match data_coding & 0x0F {
        0x00 | 0x01 if data_coding & 0xF0 == 0 => decode(bytes),
        0x08 => {
            let units: Vec<u16> =
                bytes.chunks(2).map(|c| if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { 0xFFFD }).collect();
            char::decode_utf16(units).map(|r| r.unwrap_or('\u{fffd}')).collect()
        }
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_gsm7_character() {
        let all: String = BASIC.iter().filter(|&&c| c != '\u{1b}').chain(EXTENSION.iter().map(|(_, c)| c)).collect();
        let septets = encode(&all).expect("all encodable");
        assert_eq!(septets.len(), 127 + 2 * EXTENSION.len());
        assert!(septets.iter().all(|&s| s < 0x80));
        assert_eq!(decode(&septets), all);
    }

    #[test]
    fn known_values() {
        assert_eq!(encode("@$"), Some(vec![0x00, 0x02]));
        assert_eq!(encode("€"), Some(vec![0x1B, 0x65]));
        assert_eq!(encode("Hi!"), Some(vec![0x48, 0x69, 0x21]));
        assert_eq!(encode("`"), None, "backtick is not in GSM-7");
        assert_eq!(encode("ж"), None);
        assert_eq!(encode_ucs2("ж😀"), vec![0x04, 0x36, 0xD8, 0x3D, 0xDE, 0x00]);
    }

    #[test]
    fn decoding_never_fails() {
        assert_eq!(decode(&[0x1B]), "\u{fffd}");
        assert_eq!(decode(&[0x1B, 0x00]), "\u{fffd}");
        assert_eq!(decode(&[0xFF, 0x41]), "\u{fffd}A");
        assert_eq!(decode_short_message(DATA_CODING_UCS2, &[0x04, 0x36, 0xD8]), "ж\u{fffd}");
        assert_eq!(decode_short_message(DATA_CODING_UCS2, &[0xD8, 0x3D]), "\u{fffd}", "lone surrogate");
        assert_eq!(decode_short_message(DATA_CODING_LATIN1, &[0xE9, 0x74, 0xE9]), "été");
        assert_eq!(decode_short_message(DATA_CODING_DEFAULT, &encode("Code 1234 €").expect("gsm")), "Code 1234 €");
    }
}

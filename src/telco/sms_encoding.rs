//! SMS alphabet choice and segment planning (3GPP TS 23.038, TS 23.040 §9.2.3.24.1): GSM-7
//! when every character is in the default alphabet or its extension table (extension
//! characters cost two septets), UCS-2 otherwise. Concatenated messages carry a 6-byte UDH,
//! leaving 153 septets or 67 UTF-16 units per part; a part never ends between an escape and
//! its character, nor inside a surrogate pair. Owns the GSM-7 alphabet, the one table
//! `smpp::gsm7` codes octets with. Pure.

/// The GSM 03.38 default alphabet by septet value, 0x00..=0x7F (0x1B is the escape, never a
/// character). The one copy of the table: `smpp::gsm7` encodes and decodes octets with it.
pub const GSM7_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table, reached through the escape (two septets each): (code after ESC, character).
pub const GSM7_EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// The escape septet that introduces an extension character.
pub const GSM7_ESCAPE: u8 = 0x1B;

pub const GSM7_SINGLE_SEPTETS: usize = 160;
pub const GSM7_PART_SEPTETS: usize = 153;
pub const UCS2_SINGLE_UNITS: usize = 70;
pub const UCS2_PART_UNITS: usize = 67;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    Gsm7,
    Ucs2,
}

/// The septets of one character: one, or the escape and its code; `None` if not in GSM-7.
pub fn gsm7_encode_char(c: char) -> Option<([u8; 2], usize)> {
    if c != '\u{1b}'
        && let Some(i) = GSM7_BASIC.iter().position(|&b| b == c)
    {
        return Some(([i as u8, 0], 1));
    }
    GSM7_EXTENSION.iter().find(|(_, e)| *e == c).map(|(code, _)| ([GSM7_ESCAPE, *code], 2))
}

/// Septets a character takes in GSM-7, or `None` if it is not representable.
pub fn gsm7_septets(c: char) -> Option<usize> {
    gsm7_encode_char(c).map(|(_, n)| n)
}

/// The encoding a text is sent in and how many parts it takes.
pub fn plan(text: &str) -> (SmsEncoding, u32) {
    let septets: Option<Vec<usize>> = text.chars().map(gsm7_septets).collect();
    match septets {
        Some(costs) => (SmsEncoding::Gsm7, parts(&costs, GSM7_SINGLE_SEPTETS, GSM7_PART_SEPTETS)),
        None => {
            let costs: Vec<usize> = text.chars().map(char::len_utf16).collect();
            (SmsEncoding::Ucs2, parts(&costs, UCS2_SINGLE_UNITS, UCS2_PART_UNITS))
        }
    }
}

/// Greedy packing of indivisible units (an escape pair, a surrogate pair) into parts.
fn parts(costs: &[usize], single: usize, per_part: usize) -> u32 {
    if costs.iter().sum::<usize>() <= single {
        return 1;
    }
    let mut count = 1u32;
    let mut used = 0;
    for &c in costs {
        if used + c > per_part {
            count += 1;
            used = 0;
        }
        used += c;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_boundaries() {
        assert_eq!(plan(""), (SmsEncoding::Gsm7, 1));
        assert_eq!(plan(&"a".repeat(160)), (SmsEncoding::Gsm7, 1));
        assert_eq!(plan(&"a".repeat(161)), (SmsEncoding::Gsm7, 2));
        assert_eq!(plan(&"a".repeat(306)), (SmsEncoding::Gsm7, 2));
        assert_eq!(plan(&"a".repeat(307)), (SmsEncoding::Gsm7, 3));
        assert_eq!(plan("Your code is 123456 @£$¥"), (SmsEncoding::Gsm7, 1));
    }

    #[test]
    fn extension_characters_cost_two_and_never_split() {
        assert_eq!(plan(&"€".repeat(80)), (SmsEncoding::Gsm7, 1));
        assert_eq!(plan(&"€".repeat(81)), (SmsEncoding::Gsm7, 2));
        // 152 septets then an escape pair: the pair moves whole to part 2.
        let text = format!("{}{}{}", "a".repeat(152), "{", "a".repeat(10));
        assert_eq!(plan(&text), (SmsEncoding::Gsm7, 2));
        assert_eq!(gsm7_septets('\u{1b}'), None);
    }

    #[test]
    fn ucs2_boundaries_and_surrogates() {
        assert_eq!(plan(&"é".repeat(10)).0, SmsEncoding::Gsm7);
        assert_eq!(plan(&"ж".repeat(70)), (SmsEncoding::Ucs2, 1));
        assert_eq!(plan(&"ж".repeat(71)), (SmsEncoding::Ucs2, 2));
        assert_eq!(plan(&"ж".repeat(134)), (SmsEncoding::Ucs2, 2));
        // 33 emoji = 66 units fit a part; the 34th would split a pair at unit 67.
        assert_eq!(plan(&"😀".repeat(35)), (SmsEncoding::Ucs2, 1));
        assert_eq!(plan(&"😀".repeat(36)), (SmsEncoding::Ucs2, 2));
        assert_eq!(plan(&"😀".repeat(67)), (SmsEncoding::Ucs2, 3));
    }
}

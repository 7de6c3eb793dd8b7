//! SMS alphabet choice and segment planning (3GPP TS 23.038, TS 23.040 §9.2.3.24.1): GSM-7
//! when every character is in the default alphabet or its extension table (extension
//! characters cost two septets), UCS-2 otherwise. Concatenated messages carry a 6-byte UDH,
//! leaving 153 septets or 67 UTF-16 units per part; a part never ends between an escape and
//! its character, nor inside a surrogate pair. Pure.

/// The GSM 03.38 default alphabet, in code-point order (0x1B, the escape, excluded).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters reached through the escape (two septets each).
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

pub const GSM7_SINGLE_SEPTETS: usize = 160;
pub const GSM7_PART_SEPTETS: usize = 153;
pub const UCS2_SINGLE_UNITS: usize = 70;
pub const UCS2_PART_UNITS: usize = 67;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    Gsm7,
    Ucs2,
}

/// Septets a character takes in GSM-7, or `None` if it is not representable.
pub fn gsm7_septets(c: char) -> Option<usize> {
    if c != '\u{1b}' && GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
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

//! Finding the one-time code in a message body. Pure.
//!
//! A code is a run of 4 to 8 digits, or two or three groups of at least three digits joined by
//! one space or hyphen that add up to 6 to 8 digits (`123 456`, `123-456`, `G-123456` gives `123456`), standing
//! alone (not part of a longer number, a decimal, a price or a phone number). When the text names
//! it (`code`, `OTP`, `PIN`, `passcode`, `verification`, `Code:` …), the candidate that follows
//! the keyword most closely wins; otherwise the first 6-digit candidate, then the first one.

/// Words that introduce a code, lower case.
const KEYWORDS: [&str; 9] = ["code", "otp", "pin", "passcode", "password", "verification", "verify", "token", "código"];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    digits: String,
    /// Byte offset where it starts.
    at: usize,
}

/// The one-time code in `body`, if there is one.
pub fn extract(body: &str) -> Option<String> {
    let candidates = candidates(body);
    if candidates.is_empty() {
        return None;
    }
    // ASCII lower-casing keeps byte offsets, so keyword positions line up with candidates.
    let lower = body.to_ascii_lowercase();
    // The keyword nearest before a candidate (within 60 bytes) wins.
    let keyword_ends: Vec<usize> =
        KEYWORDS.iter().flat_map(|k| lower.match_indices(k).map(move |(i, _)| i + k.len())).collect();
    let near_keyword = candidates
        .iter()
        .filter_map(|c| {
            let gap = keyword_ends.iter().filter(|&&end| end <= c.at).map(|&end| c.at - end).min()?;
            (gap <= 60).then_some((gap, c))
        })
        .min_by_key(|(gap, c)| (*gap, c.at))
        .map(|(_, c)| c.digits.clone());
    near_keyword
        .or_else(|| candidates.iter().find(|c| c.digits.len() == 6).map(|c| c.digits.clone()))
        .or_else(|| candidates.first().map(|c| c.digits.clone()))
}

fn candidates(body: &str) -> Vec<Candidate> {
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A run of digit groups joined by single separators.
        let start = i;
        let mut digits = String::new();
        let mut groups = 0;
        let mut shortest_group = usize::MAX;
        let mut end = i;
        loop {
            let group_start = end;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            digits.push_str(&body[group_start..end]);
            groups += 1;
            shortest_group = shortest_group.min(end - group_start);
            let joined = end + 1 < bytes.len()
                && matches!(bytes[end], b' ' | b'-')
                && bytes[end + 1].is_ascii_digit()
                && groups < 3;
            if !joined {
                break;
            }
            end += 1;
        }
        i = end;
        let before = start.checked_sub(1).map(|p| bytes[p]);
        let after = bytes.get(end).copied();
        // Part of a decimal, an amount, a phone number, a time or a longer token: not a code.
        let attached = |b: Option<u8>| matches!(b, Some(b'.' | b',' | b':' | b'/' | b'$' | b'+' | b'#'));
        let after_decimal = after == Some(b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() && b != b'G' && b != b'g')
            || after.is_some_and(|b| b.is_ascii_alphanumeric())
            || attached(before)
            || after_decimal
            || after.is_some_and(|b| matches!(b, b',' | b':' | b'/' | b'%'))
        {
            continue;
        }
        let len = digits.len();
        // Grouped codes come in threes or fours (`123 456`, `1234-5678`); `2026-11-22` is a date.
        let valid = if groups == 1 { (4..=8).contains(&len) } else { (6..=8).contains(&len) && shortest_group >= 3 };
        if valid {
            out.push(Candidate { digits, at: start });
        } else if groups > 1 {
            // "Call 555 1234 5678" is not a code; its single groups are not either.
            continue;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::extract;

    #[test]
    fn common_formats() {
        let cases = [
            ("Your code is 123456", Some("123456")),
            ("123456 is your Acme verification code.", Some("123456")),
            ("G-482910 is your Google verification code.", Some("482910")),
            ("Your OTP: 4821. Do not share it.", Some("4821")),
            ("Use 123-456 to sign in", Some("123456")),
            ("Your code: 482 913", Some("482913")),
            ("[Acme] Código de verificación: 99887766", Some("99887766")),
            ("Telegram code 73021", Some("73021")),
            ("PIN 0042", Some("0042")),
            ("Hello, no code here", None),
            ("", None),
        ];
        for (body, want) in cases {
            assert_eq!(extract(body).as_deref(), want, "{body}");
        }
    }

    #[test]
    fn amounts_dates_and_phone_numbers_are_not_codes() {
        assert_eq!(extract("You paid $1234.50 on 2026-11-22"), None);
        assert_eq!(extract("Call +1 555 0100 for help"), None);
        assert_eq!(extract("Meeting at 10:30, room 12"), None);
        assert_eq!(extract("Order #98765 shipped"), None);
        assert_eq!(extract("Ref AB12345C"), None);
        // The code next to the keyword beats an earlier number.
        assert_eq!(extract("Order 4455 is ready. Your pickup code is 778899").as_deref(), Some("778899"));
        assert_eq!(extract("2026 sale! Code 5521 expires soon").as_deref(), Some("5521"));
    }

    #[test]
    fn never_panics_on_odd_text() {
        for body in ["1", "12345678901234567890", "€1234€", "ж1234ж", "1-2-3-4-5-6", "- 1234 -", "😀123456😀"]
        {
            let _ = extract(body);
        }
        assert_eq!(extract("😀 123456 😀").as_deref(), Some("123456"));
    }
}

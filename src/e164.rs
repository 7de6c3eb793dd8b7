//! `E164`: a validated international phone number (ITU-T E.164), the one form numbers take
//! inside agentline: `+` followed by 8 to 15 digits, the first not zero (`+15555550123`).
//! Pure: parsing only, no I/O.

use std::fmt;

/// A validated E.164 number, stored with its leading `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

/// Why a string is not an E.164 number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum E164Error {
    #[error("must start with '+'")]
    MissingPlus,
    #[error("must contain only digits after '+'")]
    NotDigits,
    #[error("must have 8 to 15 digits")]
    BadLength,
    #[error("country code cannot start with 0")]
    LeadingZero,
}

impl E164 {
    pub const MIN_DIGITS: usize = 8;
    pub const MAX_DIGITS: usize = 15;

    pub fn parse(input: &str) -> Result<Self, E164Error> {
        let digits = input.strip_prefix('+').ok_or(E164Error::MissingPlus)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(E164Error::NotDigits);
        }
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits.len()) {
            return Err(E164Error::BadLength);
        }
        if digits.starts_with('0') {
            return Err(E164Error::LeadingZero);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+` (the form SMPP and SIP user parts carry).
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for E164 {
    type Err = E164Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_numbers() {
        for n in ["+15555550123", "+4915112345678", "+12345678", "+123456789012345"] {
            assert_eq!(E164::parse(n).map(|e| e.into_string()), Ok(n.to_owned()));
        }
        assert_eq!(E164::parse("+15555550123").expect("valid").digits(), "15555550123");
    }

    #[test]
    fn rejects_each_failure() {
        assert_eq!(E164::parse("15555550123"), Err(E164Error::MissingPlus));
        assert_eq!(E164::parse("+1555 555 0123"), Err(E164Error::NotDigits));
        assert_eq!(E164::parse("+1555-5550123"), Err(E164Error::NotDigits));
        assert_eq!(E164::parse("+"), Err(E164Error::BadLength));
        assert_eq!(E164::parse("+1234567"), Err(E164Error::BadLength));
        assert_eq!(E164::parse("+1234567890123456"), Err(E164Error::BadLength));
        assert_eq!(E164::parse("+0123456789"), Err(E164Error::LeadingZero));
        assert_eq!(E164::parse("+١٢٣٤٥٦٧٨٩"), Err(E164Error::NotDigits));
    }
}

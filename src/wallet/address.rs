//! `Address`: a 20-byte Ethereum account, parsed from `0x` + 40 hex digits (any case) and
//! always rendered lowercase, which is the form stored and compared.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address([u8; 20]);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("must start with 0x")]
    MissingPrefix,
    #[error("must be 40 hex digits after 0x")]
    BadLength,
    #[error("must contain only hex digits")]
    NotHex,
}

impl Address {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let hex = input.strip_prefix("0x").or_else(|| input.strip_prefix("0X")).ok_or(AddressError::MissingPrefix)?;
        if hex.len() != 40 {
            return Err(AddressError::BadLength);
        }
        let mut out = [0u8; 20];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Self(out))
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

fn nibble(c: u8) -> Result<u8, AddressError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(AddressError::NotHex),
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl From<alloy_primitives::Address> for Address {
    fn from(a: alloy_primitives::Address) -> Self {
        Self(a.into_array())
    }
}

impl From<Address> for alloy_primitives::Address {
    fn from(a: Address) -> Self {
        alloy_primitives::Address::from(a.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mixed_case_and_renders_lowercase() {
        let a = Address::parse("0xEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE").expect("valid");
        assert_eq!(a.to_string(), "0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
        let b = Address::parse("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913").expect("valid");
        assert_eq!(b.as_bytes()[0], 0x83);
        assert_eq!(b.to_string(), "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913");
    }

    #[test]
    fn rejects_each_failure() {
        assert_eq!(Address::parse("833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"), Err(AddressError::MissingPrefix));
        assert_eq!(Address::parse("0x1234"), Err(AddressError::BadLength));
        assert_eq!(Address::parse("0xZZ3589fCD6eDb6E08f4c7C32D4f71b54bdA02913"), Err(AddressError::NotHex));
        assert_eq!(Address::parse("0xé33589fCD6eDb6E08f4c7C32D4f71b54bdA0291"), Err(AddressError::NotHex));
    }
}

//! Bearer tokens: generation, shape check, hashing. Pure apart from the random source.

use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "an_";
const RANDOM_CHARS: usize = 32;

/// A bearer token in clear. Only ever shown to its owner once; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not an agentline token")]
    Malformed,
}

impl Token {
    pub fn generate() -> Self {
        let mut s = String::with_capacity(PREFIX.len() + RANDOM_CHARS);
        s.push_str(PREFIX);
        s.extend(rand::rng().sample_iter(rand::distr::Alphanumeric).take(RANDOM_CHARS).map(char::from));
        Self(s)
    }

    /// Accepts exactly `an_` + 32 ASCII alphanumerics.
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        let rest = s.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        if rest.len() != RANDOM_CHARS || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(TokenError::Malformed);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(an_…)")
    }
}

pub(super) fn hashes_equal(stored: &[u8], presented: &[u8; 32]) -> bool {
    stored.len() == presented.len() && bool::from(stored.ct_eq(presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 35);
        assert_eq!(Token::parse(a.expose()), Ok(a.clone()));
        assert_ne!(a.hash(), b.hash());
        assert!(hashes_equal(&a.hash(), &a.hash()));
        assert!(!hashes_equal(&a.hash()[..31], &a.hash()));
        assert_eq!(format!("{a:?}"), "Token(an_…)");
    }

    #[test]
    fn rejects_wrong_shapes() {
        for bad in [
            "",
            "an_",
            "an_short",
            "bearer",
            &format!("an_{}", "a".repeat(33)),
            &format!("an_{}!", "a".repeat(31)),
            &format!("xx_{}", "a".repeat(32)),
        ] {
            assert_eq!(Token::parse(bad), Err(TokenError::Malformed), "{bad}");
        }
    }
}

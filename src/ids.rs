//! The ids agentline hands out, each its own type so that a call id cannot be passed where a
//! message id is wanted, and an owner is a [`SubscriptionId`], not any `i64`.
//!
//! Public ids are a prefix and 26 random alphanumerics (about 154 bits): `call_…`, `msg_…`.
//! An id a client sends is only a lookup key: [`CallId::parse`] and [`MessageId::parse`] refuse
//! what could never have been issued (wrong prefix, other characters, over [`MAX_ID_LEN`]), and
//! the caller answers that like an id that names nothing. Ids read back from the store are
//! taken as stored ([`CallId::from_stored`]).

use std::fmt;

use rand::Rng as _;
use serde::{Deserialize, Serialize};

/// Random characters after the prefix of a generated id.
const RANDOM_LEN: usize = 26;

/// The longest public id accepted from a client; generated ones are 31 bytes at most.
pub const MAX_ID_LEN: usize = 64;

/// A subscription's row id: the owner of numbers, messages and calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscriptionId(i64);

impl SubscriptionId {
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! public_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random id.
            pub fn generate() -> Self {
                let mut id = String::with_capacity(Self::PREFIX.len() + RANDOM_LEN);
                id.push_str(Self::PREFIX);
                id.extend(rand::rng().sample_iter(rand::distr::Alphanumeric).take(RANDOM_LEN).map(char::from));
                Self(id)
            }

            /// An id as a client spelled it, if it could have been issued; `None` otherwise.
            pub fn parse(text: &str) -> Option<Self> {
                let rest = text.strip_prefix(Self::PREFIX)?;
                (text.len() <= MAX_ID_LEN && !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .then(|| Self(text.to_owned()))
            }

            /// An id read back from the store, which only holds ids this service issued.
            pub fn from_stored(text: String) -> Self {
                Self(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

public_id!(
    /// A call's public id: `call_` and 26 random alphanumerics.
    CallId,
    "call_"
);
public_id!(
    /// A message's public id: `msg_` and 26 random alphanumerics.
    MessageId,
    "msg_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_differ() {
        let a = CallId::generate();
        assert_eq!(a.as_str().len(), 31);
        assert_eq!(CallId::parse(a.as_str()), Some(a.clone()));
        assert_ne!(a, CallId::generate());
        let m = MessageId::generate();
        assert!(m.as_str().starts_with("msg_") && m.as_str().len() == 30);
        assert_eq!(MessageId::parse(m.as_str()), Some(m));
    }

    #[test]
    fn parse_refuses_what_was_never_issued() {
        for bad in
            ["", "call_", "msg_abc", "call_abc-def", "call_ab c", "CALL_abc", &format!("call_{}", "a".repeat(60))]
        {
            assert_eq!(CallId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(MessageId::parse("call_abc"), None);
        assert!(CallId::parse("call_abc").is_some());
    }

    #[test]
    fn ids_serialize_as_their_text() {
        let id = MessageId::parse("msg_abc").expect("valid");
        assert_eq!(serde_json::to_string(&id).expect("json"), "\"msg_abc\"");
        assert_eq!(serde_json::to_string(&SubscriptionId::new(7)).expect("json"), "7");
    }
}

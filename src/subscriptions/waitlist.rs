//! The waitlist: emails to notify when numbers free up.

use super::SubscriptionService;
use crate::clock;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WaitlistError {
    #[error("email is not a valid address")]
    InvalidEmail,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SubscriptionService {
    /// Registers `email` (checked, trimmed, lowercased) and answers its first registration time:
    /// joining twice keeps the first.
    pub async fn join_waitlist(&self, email: &str) -> Result<i64, WaitlistError> {
        let email = normalize_email(email).ok_or(WaitlistError::InvalidEmail)?;
        Ok(self.store.join_waitlist(&email, clock::now_ms()).await?)
    }
}

/// A pragmatic address check (RFC 5321 lengths, one `@`, a dotted domain, no spaces or
/// control characters); the result is trimmed and lowercased so one inbox registers once.
fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    let domain_ok = !domain.contains('@')
        && domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    let local_ok = !local.is_empty() && local.len() <= 64 && !local.starts_with('.') && !local.ends_with('.');
    (domain_ok && local_ok).then_some(email)
}

#[cfg(test)]
mod tests {
    use super::normalize_email;

    #[test]
    fn emails() {
        assert_eq!(normalize_email(" You@Example.com ").as_deref(), Some("you@example.com"));
        assert_eq!(normalize_email("a.b+tag@sub.example.co").as_deref(), Some("a.b+tag@sub.example.co"));
        for bad in [
            "",
            "you",
            "you@",
            "@example.com",
            "you@example",
            "a@@b.com",
            "a b@c.com",
            "you@-x.com",
            "you@x..com",
            ".a@b.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
        assert_eq!(normalize_email(&format!("{}@example.com", "a".repeat(65))), None);
    }
}

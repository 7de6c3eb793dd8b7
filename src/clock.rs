//! Wall-clock time as unix milliseconds, the form every stored time takes, and its RFC 3339
//! rendering (`2026-04-30T18:24:01.000Z`), the form every API time takes.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

const RFC3339_MS: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Renders unix milliseconds as RFC 3339 UTC with millisecond precision.
pub fn rfc3339(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(RFC3339_MS).unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned())
}

/// Parses any RFC 3339 timestamp (any offset) into unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?.to_offset(UtcOffset::UTC);
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_milliseconds() {
        assert_eq!(rfc3339(1_777_573_441_000), "2026-04-30T18:24:01.000Z");
        assert_eq!(rfc3339(1_777_573_441_007), "2026-04-30T18:24:01.007Z");
        assert_eq!(parse_rfc3339("2026-04-30T18:24:01.007Z"), Some(1_777_573_441_007));
        assert_eq!(parse_rfc3339("2026-04-30T20:24:01+02:00"), Some(1_777_573_441_000));
        assert_eq!(parse_rfc3339("2026-04-30"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}

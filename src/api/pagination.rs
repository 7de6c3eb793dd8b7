//! Pagination shared by every list endpoint and MCP tool: page sizes and the opaque history
//! cursor (`h1:<created_at>:<id>`, base64url), the same for messages and calls.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;
use crate::store::HistoryCursor;

const MAX_LIMIT: i64 = 100;

/// `cursor`: absent -> none; not one of ours -> 400.
pub fn parse_cursor(raw: Option<&str>) -> Result<Option<HistoryCursor>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => decode_cursor(raw).map(Some).ok_or_else(|| ApiError::invalid_request("malformed cursor")),
    }
}

pub fn parse_limit(raw: Option<&str>, default: i64) -> Result<i64, ApiError> {
    match raw {
        None | Some("") => Ok(default),
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n.min(MAX_LIMIT)),
            _ => Err(ApiError::invalid_request(format!("limit must be an integer from 1 to {MAX_LIMIT}"))),
        },
    }
}

const CURSOR_VERSION: &str = "h1";

pub fn encode_cursor(c: HistoryCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}:{}:{}", c.created_at, c.id))
}

fn decode_cursor(raw: &str) -> Option<HistoryCursor> {
    if raw.len() > 128 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let mut parts = text.split(':');
    let (version, created_at, id) = (parts.next()?, parts.next()?, parts.next()?);
    if version != CURSOR_VERSION || parts.next().is_some() {
        return None;
    }
    Some(HistoryCursor { created_at: created_at.parse().ok()?, id: id.parse().ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = HistoryCursor { created_at: 1_777_573_441_000, id: 4820 };
        assert_eq!(decode_cursor(&encode_cursor(c)), Some(c));
        for bad in [
            "",
            "!!",
            "4820|4810",
            &URL_SAFE_NO_PAD.encode("h2:1:2"),
            &URL_SAFE_NO_PAD.encode("h1:x:2"),
            &URL_SAFE_NO_PAD.encode("h1:1:2:3"),
            &"A".repeat(200),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn limits_default_cap_and_reject() {
        assert_eq!(parse_limit(None, 20).ok(), Some(20));
        assert_eq!(parse_limit(Some("7"), 20).ok(), Some(7));
        assert_eq!(parse_limit(Some("1000"), 20).ok(), Some(100));
        for bad in ["0", "-1", "ten", "1.5"] {
            assert!(parse_limit(Some(bad), 20).is_err(), "{bad}");
        }
    }
}

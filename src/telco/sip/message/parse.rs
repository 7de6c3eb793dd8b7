//! Reading a message off the wire: stream framing by Content-Length (RFC 3261 §18.3),
//! keepalive CRLFs (RFC 5626 §3.5.1), the start line and header section (§7, §25), with every
//! peer-controlled length bounded by [`MAX_HEADER_LEN`] and [`MAX_BODY_LEN`] before use.

use std::borrow::Cow;

use super::*;

/// How the message arrived, which decides what a missing Content-Length means (§18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// UDP: no Content-Length means the body runs to the end of the datagram, and octets past
    /// a Content-Length are discarded.
    Datagram,
    /// TCP/TLS: one frame cut by [`frame_len`]; Content-Length is required and must match.
    Stream,
}

/// Leading CR and LF octets: keepalives on a stream (RFC 5626 §3.5.1 sends "\r\n\r\n" and expects
/// "\r\n" back) or stray line ends before a start line, which §7.5 says to ignore. A connection
/// consumes them before calling [`frame_len`].
pub fn keepalive_len(buf: &[u8]) -> usize {
    buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count()
}

/// Stream framing: `Ok(None)` = need more bytes; `Ok(Some(len))` = a whole message (with any
/// leading CR/LF) is the first `len` octets of `buf`. Refuses a header section that has not
/// ended within [`MAX_HEADER_LEN`] octets, a body over [`MAX_BODY_LEN`] and a message without
/// Content-Length, before the bytes they claim have arrived.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, SipError> {
    let skip = keepalive_len(buf);
    let msg = &buf[skip..];
    let Some(head_end) = find_header_end(msg)? else {
        return Ok(None);
    };
    let lines = physical_lines(&msg[..head_end]);
    let raw = raw_headers(&lines)?;
    let body_len = content_length(&raw)?.ok_or(SipError::MissingContentLength)?;
    let total = head_end + body_len;
    Ok((msg.len() >= total).then_some(skip + total))
}

/// The index just past the empty line that ends the header section, if it is in `msg`.
pub(super) fn find_header_end(msg: &[u8]) -> Result<Option<usize>, SipError> {
    let window = &msg[..msg.len().min(MAX_HEADER_LEN)];
    let mut line_start = 0;
    for (i, &b) in window.iter().enumerate() {
        if b == b'\n' {
            let line = &window[line_start..i];
            if line_start > 0 && (line.is_empty() || line == b"\r") {
                return Ok(Some(i + 1));
            }
            line_start = i + 1;
        }
    }
    if msg.len() >= MAX_HEADER_LEN { Err(SipError::HeaderSectionTooLarge) } else { Ok(None) }
}

/// The lines of a header section, LF or CRLF terminated, with their 1-based numbers; the empty
/// line that ends the section is not among them.
pub(super) fn physical_lines(head: &[u8]) -> Vec<(usize, &[u8])> {
    head.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .take_while(|(_, line)| !line.is_empty())
        .collect()
}

pub(super) struct RawHeader<'a> {
    line: usize,
    name: &'a [u8],
    value: Cow<'a, [u8]>,
}

/// Unfolds the header lines (everything after the start line): a line that starts with SP or
/// HTAB continues the previous value, joined by one SP (§7.3.1).
pub(super) fn raw_headers<'a>(lines: &[(usize, &'a [u8])]) -> Result<Vec<RawHeader<'a>>, SipError> {
    let mut headers: Vec<RawHeader<'a>> = Vec::new();
    for &(line, text) in lines.iter().skip(1) {
        if text.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            let previous = headers.last_mut().ok_or(SipError::FoldWithoutHeader { line })?;
            let continuation = text.trim_ascii();
            if !continuation.is_empty() {
                let value = previous.value.to_mut();
                if !value.is_empty() {
                    value.push(b' ');
                }
                value.extend_from_slice(continuation);
            }
            continue;
        }
        let colon = text.iter().position(|&b| b == b':').ok_or(SipError::BadHeaderLine { line })?;
        let name = text[..colon].trim_ascii_end();
        if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
            return Err(SipError::BadHeaderLine { line });
        }
        headers.push(RawHeader { line, name, value: Cow::Borrowed(text[colon + 1..].trim_ascii()) });
    }
    Ok(headers)
}

pub(super) fn content_length(headers: &[RawHeader<'_>]) -> Result<Option<usize>, SipError> {
    let mut found: Option<usize> = None;
    for header in headers {
        let Ok(name) = std::str::from_utf8(header.name) else { continue };
        if !same_header(name, "Content-Length") {
            continue;
        }
        let digits = header.value.as_ref();
        if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
            return Err(SipError::BadHeaderValue { name: "Content-Length", reason: "not a decimal number" });
        }
        // At most ten digits: no overflow in u64, and checked against the limit before use.
        let len = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_BODY_LEN {
            return Err(SipError::BodyTooLarge { len });
        }
        match found {
            Some(first) if first != len => return Err(SipError::ConflictingContentLength { first, second: len }),
            _ => found = Some(len),
        }
    }
    Ok(found)
}

/// The controls a SIP text may not hold: all of C0 but HTAB, and DEL (§25.1 `TEXT-UTF8char`).
pub(super) fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7F
}

pub(super) fn has_control(text: &str) -> bool {
    text.bytes().any(is_control)
}

pub(super) fn checked_text(line: usize, bytes: &[u8]) -> Result<&str, SipError> {
    if bytes.iter().any(|&b| is_control(b)) {
        return Err(SipError::ControlCharacter { line });
    }
    std::str::from_utf8(bytes).map_err(|_| SipError::NotUtf8 { line })
}

pub(super) fn parse_start_line(line: &str) -> Result<StartLine, SipError> {
    if line.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/")) {
        let (version, rest) = line.split_once([' ', '\t']).ok_or(SipError::BadStartLine)?;
        if !version.eq_ignore_ascii_case(SIP_VERSION) {
            return Err(SipError::BadVersion);
        }
        let rest = rest.trim_start();
        let (code, reason) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
        let code = status_code(code).ok_or(SipError::BadStatusCode)?;
        return Ok(StartLine::Response { code, reason: reason.trim().to_owned() });
    }
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SipError::BadStartLine);
    };
    if !version.eq_ignore_ascii_case(SIP_VERSION) {
        return Err(SipError::BadVersion);
    }
    Ok(StartLine::Request { method: Method::parse(method)?, uri: Uri::parse(uri)? })
}

pub(super) fn status_code(text: &str) -> Option<u16> {
    if text.len() != 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|code| (100..=699).contains(code))
}

/// A decimal header value that fits `u32`.
pub(super) fn header_u32(value: &str, name: &'static str) -> Result<u32, SipError> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_DIGITS || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SipError::BadHeaderValue { name, reason: "not a decimal number" });
    }
    value.parse().map_err(|_| SipError::BadHeaderValue { name, reason: "does not fit 32 bits" })
}

impl Message {
    /// Parses one message. Leading CR/LF are skipped (§7.5). With [`Framing::Stream`], `buf`
    /// must be exactly the frame [`frame_len`] measured.
    pub fn parse(buf: &[u8], framing: Framing) -> Result<Self, SipError> {
        let msg = &buf[keepalive_len(buf)..];
        if msg.is_empty() {
            return Err(SipError::Empty);
        }
        let head_end = find_header_end(msg)?.ok_or(SipError::UnterminatedHeaders)?;
        let lines = physical_lines(&msg[..head_end]);
        let &(_, start_line) = lines.first().ok_or(SipError::Empty)?;
        let start = parse_start_line(checked_text(1, start_line)?)?;
        let raw = raw_headers(&lines)?;
        let declared = content_length(&raw)?;

        let mut headers = Vec::with_capacity(raw.len());
        for header in &raw {
            let value = checked_text(header.line, &header.value)?;
            let name = checked_text(header.line, header.name)?;
            if !same_header(name, "Content-Length") {
                headers.push(Header { name: name.to_owned(), value: value.to_owned() });
            }
        }

        let rest = &msg[head_end..];
        let body = match (framing, declared) {
            (_, Some(declared)) if declared > rest.len() => {
                return Err(SipError::BodyTruncated { declared, available: rest.len() });
            }
            (Framing::Stream, Some(declared)) if rest.len() > declared => {
                return Err(SipError::TrailingBytes { count: rest.len() - declared });
            }
            (_, Some(declared)) => &rest[..declared],
            (Framing::Stream, None) => return Err(SipError::MissingContentLength),
            (Framing::Datagram, None) if rest.len() > MAX_BODY_LEN => {
                return Err(SipError::BodyTooLarge { len: rest.len() });
            }
            (Framing::Datagram, None) => rest,
        };
        Ok(Self { start, headers: Headers(headers), body: body.to_vec() })
    }
}

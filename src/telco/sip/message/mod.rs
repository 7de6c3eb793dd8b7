//! SIP messages (RFC 3261 §7, §20, §25), pure: `&[u8]` in, a typed [`Message`] out, and back.
//!
//! Owns the start line, the header section and the body: [`Message::parse`] reads one message
//! from a datagram or from a stream frame cut by [`frame_len`] (§18.3); [`Message::to_bytes`]
//! writes it again, and what it writes parses to an equal message. Headers keep their name as
//! sent (compact forms included) and their value as unfolded text; accessors type them on
//! demand (Via, From/To, CSeq, Contact, Route, Session-Expires of RFC 4028, challenges of
//! RFC 2617/7616 through [`super::digest`]), splitting comma lists only for the headers whose
//! grammar is a list. [`Uri`] covers `sip:`, `sips:` and `tel:` (§19.1, RFC 3966). Builders make
//! the requests and responses a UA sends (§8.1.1, §8.2.6, §9.1, §13.2.2.4, §17.1.1.3).
//!
//! Content-Length is framing, not content: the parser checks it and drops it, and the writer
//! always derives it from the body, so the two can never disagree.
//!
//! Every length a peer controls is bounded before it is used: the header section by
//! [`MAX_HEADER_LEN`], the body by [`MAX_BODY_LEN`]. Nothing here panics on any input.
//!
//! What this module must not do: own a socket, read a clock, draw random numbers (branches, tags
//! and Call-IDs are passed in), match transactions or keep dialog state.
//!
//! A response as it sits in the buffer:
//! `SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKa1\r\n…\r\nl: 0\r\n\r\n`.
//!
//! Split by job; every public item is re-exported here, so `sip::message::X` is the path:
//! - `uri`: [`Uri`], [`NameAddr`], [`Via`], [`Param`], Session-Expires values, quoting;
//! - `headers`: the header container and the typed accessors on [`Message`] (§7.3, §20);
//! - `parse`: framing (§18.3) and [`Message::parse`] (§7, §25);
//! - `build`: [`RequestHead`] and the request/response builders (§8.1.1, §8.2.6, §9.1, §17.1.1.3).

mod build;
mod headers;
mod parse;
#[cfg(test)]
mod tests;
mod uri;

pub use build::*;
pub use headers::*;
pub use parse::*;
pub use uri::*;

use std::fmt::{self, Write as _};
use std::str::FromStr;

use super::digest::DigestError;
use crate::e164::E164Error;

/// Longest header section accepted, start line and the terminating empty line included.
pub const MAX_HEADER_LEN: usize = 16 * 1024;
/// Longest body accepted; an SDP offer is a few hundred octets.
pub const MAX_BODY_LEN: usize = 64 * 1024;
/// The prefix of an RFC 3261 branch (§8.1.1.7); our own branches must carry it.
pub const BRANCH_MAGIC: &str = "z9hG4bK";
/// Max-Forwards of a request we originate (§8.1.1.6).
pub const DEFAULT_MAX_FORWARDS: u8 = 70;

pub(super) const SIP_VERSION: &str = "SIP/2.0";
/// Longer numbers in a header are refused before they are converted.
pub(super) const MAX_DIGITS: usize = 10;

/// Why a message, a header value or a URI could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    #[error("no empty line ends the header section within {MAX_HEADER_LEN} octets")]
    HeaderSectionTooLarge,
    #[error("a body of {len} octets exceeds the limit of {MAX_BODY_LEN}")]
    BodyTooLarge { len: usize },
    #[error("the message has no start line")]
    Empty,
    #[error("the header section does not end with an empty line")]
    UnterminatedHeaders,
    #[error("Content-Length says {declared} octets, {available} follow the headers")]
    BodyTruncated { declared: usize, available: usize },
    #[error("a message on a stream transport needs Content-Length")]
    MissingContentLength,
    #[error("Content-Length appears with two values, {first} and {second}")]
    ConflictingContentLength { first: usize, second: usize },
    #[error("{count} octets follow the message in its frame")]
    TrailingBytes { count: usize },
    #[error("the start line is neither a request line nor a status line")]
    BadStartLine,
    #[error("the protocol version is not SIP/2.0")]
    BadVersion,
    #[error("the method is not a token")]
    BadMethod,
    #[error("the status code is not a number from 100 to 699")]
    BadStatusCode,
    #[error("line {line} is not a `name: value` header")]
    BadHeaderLine { line: usize },
    #[error("line {line} continues a header but no header precedes it")]
    FoldWithoutHeader { line: usize },
    #[error("line {line} contains a control character")]
    ControlCharacter { line: usize },
    #[error("line {line} is not UTF-8")]
    NotUtf8 { line: usize },
    #[error("the {name} header is missing")]
    MissingHeader { name: &'static str },
    #[error("the {name} header is malformed: {reason}")]
    BadHeaderValue { name: &'static str, reason: &'static str },
    #[error("the URI is malformed: {reason}")]
    BadUri { reason: &'static str },
    #[error("the user part is not an E.164 number: {source}")]
    NotAPhoneNumber {
        #[source]
        source: E164Error,
    },
    #[error("a challenge is malformed: {0}")]
    Challenge(#[from] DigestError),
    #[error("cannot send {what}")]
    Unsendable { what: &'static str },
    #[error("the builder needs {expected}")]
    WrongMessage { expected: &'static str },
}

/// A request method (§7.1); case-sensitive, so `invite` is an unknown extension method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Prack,
    Update,
    Info,
    Refer,
    Notify,
    Subscribe,
    Message,
    Publish,
    /// Any other token.
    Other(String),
}

impl Method {
    const KNOWN: [(Method, &'static str); 14] = [
        (Method::Invite, "INVITE"),
        (Method::Ack, "ACK"),
        (Method::Bye, "BYE"),
        (Method::Cancel, "CANCEL"),
        (Method::Options, "OPTIONS"),
        (Method::Register, "REGISTER"),
        (Method::Prack, "PRACK"),
        (Method::Update, "UPDATE"),
        (Method::Info, "INFO"),
        (Method::Refer, "REFER"),
        (Method::Notify, "NOTIFY"),
        (Method::Subscribe, "SUBSCRIBE"),
        (Method::Message, "MESSAGE"),
        (Method::Publish, "PUBLISH"),
    ];

    pub fn parse(token: &str) -> Result<Self, SipError> {
        if let Some((method, _)) = Self::KNOWN.iter().find(|(_, name)| *name == token) {
            return Ok(method.clone());
        }
        if token.is_empty() || !token.bytes().all(is_token_byte) {
            return Err(SipError::BadMethod);
        }
        Ok(Self::Other(token.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(name) => name,
            known => Self::KNOWN.iter().find(|(m, _)| m == known).map_or("", |(_, name)| name),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = SipError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A request line or a status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `INVITE sip:+14155550123@sip.telnyx.com SIP/2.0`
    Request { method: Method, uri: Uri },
    /// `SIP/2.0 180 Ringing`
    Response { code: u16, reason: String },
}

/// One SIP message. Built by [`Message::parse`] or the builders, which guarantee that
/// [`Message::to_bytes`] writes something that parses back to an equal message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    start: StartLine,
    headers: Headers,
    body: Vec<u8>,
}
impl Message {
    /// The message on the wire: start line, headers in order, `Content-Length` last, the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(256 + self.headers.len() * 48);
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(head, "{method} {uri} {SIP_VERSION}\r\n");
            }
            StartLine::Response { code, reason } => {
                let _ = write!(head, "{SIP_VERSION} {code} {reason}\r\n");
            }
        }
        for header in self.headers.iter() {
            let _ = write!(head, "{}: {}\r\n", header.name, header.value);
        }
        let _ = write!(head, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// An empty request; the method and URI are checked to print back as themselves.
    pub fn new_request(method: Method, uri: Uri) -> Result<Self, SipError> {
        if Method::parse(method.as_str()).as_ref() != Ok(&method) {
            return Err(SipError::Unsendable { what: "a method that is not a token" });
        }
        if Uri::parse(&uri.to_string()).as_ref() != Ok(&uri) {
            return Err(SipError::Unsendable { what: "a Request-URI that does not print as itself" });
        }
        Ok(Self { start: StartLine::Request { method, uri }, headers: Headers::default(), body: Vec::new() })
    }

    /// An empty response.
    pub fn new_response(code: u16, reason: &str) -> Result<Self, SipError> {
        if !(100..=699).contains(&code) {
            return Err(SipError::BadStatusCode);
        }
        if has_control(reason) {
            return Err(SipError::Unsendable { what: "a reason phrase with a control character" });
        }
        let start = StartLine::Response { code, reason: reason.trim_ascii().to_owned() };
        Ok(Self { start, headers: Headers::default(), body: Vec::new() })
    }

    pub fn start_line(&self) -> &StartLine {
        &self.start
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method; `None` for a response (see [`Message::cseq`] for its method).
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status_code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Sets the body and its Content-Type; an empty body removes Content-Type.
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) -> Result<(), SipError> {
        if body.len() > MAX_BODY_LEN {
            return Err(SipError::BodyTooLarge { len: body.len() });
        }
        if body.is_empty() {
            self.headers.remove("Content-Type");
        } else {
            self.headers.set("Content-Type", content_type)?;
        }
        self.body = body;
        Ok(())
    }
}

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

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use super::digest::{AuthKind, Challenge, DigestError};
use crate::e164::{E164, E164Error};

/// Longest header section accepted, start line and the terminating empty line included.
pub const MAX_HEADER_LEN: usize = 16 * 1024;
/// Longest body accepted; an SDP offer is a few hundred octets.
pub const MAX_BODY_LEN: usize = 64 * 1024;
/// The prefix of an RFC 3261 branch (§8.1.1.7); our own branches must carry it.
pub const BRANCH_MAGIC: &str = "z9hG4bK";
/// Max-Forwards of a request we originate (§8.1.1.6).
pub const DEFAULT_MAX_FORWARDS: u8 = 70;

const SIP_VERSION: &str = "SIP/2.0";
/// Longer numbers in a header are refused before they are converted.
const MAX_DIGITS: usize = 10;

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

/// A `;name[=value]` parameter of a URI or a header. Names compare case-insensitively; a quoted
/// header-parameter value keeps its quotes, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
}

impl Param {
    pub fn new(name: &str, value: Option<&str>) -> Self {
        Self { name: name.to_owned(), value: value.map(str::to_owned) }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(value) = &self.value {
            write!(f, "={value}")?;
        }
        Ok(())
    }
}

/// The first parameter named `name`, case-insensitively.
pub fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &[Param]) -> fmt::Result {
    params.iter().try_for_each(|p| write!(f, ";{p}"))
}

/// `sip:`, `sips:` or `tel:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sip => "sip",
            Self::Sips => "sips",
            Self::Tel => "tel",
        }
    }
}

/// A SIP or tel URI (§19.1.1, RFC 3966), kept escaped as on the wire.
///
/// `sip:+14155550123@sip.telnyx.com:5060;transport=udp;user=phone`,
/// `tel:+1-415-555-0123;phone-context=example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    /// The user part of a SIP URI, or the number of a tel URI.
    pub user: Option<String>,
    /// The deprecated `user:password` form; kept so that what parses prints back.
    pub password: Option<String>,
    /// Hostname, IPv4 address or bracketed IPv6 reference; empty for a tel URI.
    pub host: String,
    pub port: Option<u16>,
    /// `;transport=tcp`, `;user=phone`, `;lr`, …
    pub params: Vec<Param>,
    /// `?name=value&…`; every entry has a value.
    pub headers: Vec<Param>,
}

impl Uri {
    /// `sip:user@host`, no port or parameters.
    pub fn sip(user: Option<&str>, host: &str) -> Self {
        Self {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            password: None,
            host: host.to_owned(),
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Self {
        self.params.push(Param::new(name, value));
        self
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// The `transport` parameter's value, if any.
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").and_then(|p| p.value.as_deref())
    }

    /// Parses a URI with no surrounding whitespace or angle brackets.
    pub fn parse(text: &str) -> Result<Self, SipError> {
        let bad = |reason| SipError::BadUri { reason };
        if text.bytes().any(|b| !b.is_ascii_graphic() || matches!(b, b'<' | b'>' | b'"')) {
            return Err(bad("contains a space, a control, a non-ASCII octet or one of <>\""));
        }
        let (scheme, rest) = text.split_once(':').ok_or(bad("no scheme"))?;
        let scheme = if scheme.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            return Err(bad("the scheme is not sip, sips or tel"));
        };

        if scheme == Scheme::Tel {
            let (number, params) = rest.split_once(';').map_or((rest, None), |(n, p)| (n, Some(p)));
            if number.is_empty() || number.contains(['@', '?']) {
                return Err(bad("a tel URI needs a number"));
            }
            return Ok(Self {
                scheme,
                user: Some(number.to_owned()),
                password: None,
                host: String::new(),
                port: None,
                params: params.map(parse_uri_params).transpose()?.unwrap_or_default(),
                headers: Vec::new(),
            });
        }

        let (userinfo, hostpart) = match rest.split_once('@') {
            Some((userinfo, hostpart)) => (Some(userinfo), hostpart),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = info.split_once(':').map_or((info, None), |(u, p)| (u, Some(p)));
                if user.is_empty() {
                    return Err(bad("an empty user part before '@'"));
                }
                (Some(user.to_owned()), password.map(str::to_owned))
            }
        };
        let (hostpart, headers) = hostpart.split_once('?').map_or((hostpart, None), |(h, q)| (h, Some(q)));
        let (hostport, params) = split_host_params(hostpart);
        let (host, port) = parse_host_port(hostport).map_err(bad)?;
        let params = params.map(parse_uri_params).transpose()?.unwrap_or_default();
        let headers = match headers {
            None => Vec::new(),
            Some(query) => query
                .split('&')
                .map(|h| match h.split_once('=') {
                    Some((name, value)) if !name.is_empty() => Ok(Param::new(name, Some(value))),
                    _ => Err(bad("a URI header is not name=value")),
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Self { scheme, user, password, host, port, params, headers })
    }

    /// The E.164 number this URI names (the tel number, or the user part of a SIP URI), with
    /// visual separators removed; see [`normalize_e164`].
    pub fn phone_number(&self) -> Result<E164, SipError> {
        normalize_e164(self.user.as_deref().unwrap_or_default())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(password) = &self.password {
                write!(f, ":{password}")?;
            }
            if self.scheme != Scheme::Tel {
                f.write_str("@")?;
            }
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write_params(f, &self.params)?;
        for (i, header) in self.headers.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            write!(f, "{header}")?;
        }
        Ok(())
    }
}

impl FromStr for Uri {
    type Err = SipError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Normalises the user part of a SIP URI (or a tel number) to E.164: drops telephone-subscriber
/// parameters (`;isub=…`, `;npdi`) and the visual separators `-` `.` `(` `)`, then accepts
/// `+` and digits (`+14155550123`) or bare international digits (`14155550123`). Anything else,
/// including national forms with a trunk prefix (`0…`, `00…`), is refused: guessing a country
/// is the caller's policy, not this codec's.
pub fn normalize_e164(user: &str) -> Result<E164, SipError> {
    let number = user.split(';').next().unwrap_or_default();
    let mut canonical = String::with_capacity(number.len() + 1);
    canonical.push('+');
    let digits = number.strip_prefix('+').unwrap_or(number);
    canonical.extend(digits.chars().filter(|c| !matches!(c, '-' | '.' | '(' | ')')));
    E164::parse(&canonical).map_err(|source| SipError::NotAPhoneNumber { source })
}

/// Splits `host[:port];params` at the first `;` that is not inside an IPv6 reference.
fn split_host_params(text: &str) -> (&str, Option<&str>) {
    let search_from = if text.starts_with('[') { text.find(']').unwrap_or(0) } else { 0 };
    match text[search_from..].find(';') {
        Some(i) => (&text[..search_from + i], Some(&text[search_from + i + 1..])),
        None => (text, None),
    }
}

/// `host[:port]`: a hostname, IPv4 address or `[IPv6]`, and a port that fits 16 bits.
fn parse_host_port(text: &str) -> Result<(String, Option<u16>), &'static str> {
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']').ok_or("an IPv6 reference without ']'")?;
        let inner = &text[1..end];
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err("a malformed IPv6 reference");
        }
        let after = &text[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err("text after the IPv6 reference"),
        };
        (&text[..=end], port)
    } else {
        let (host, port) = text.split_once(':').map_or((text, None), |(h, p)| (h, Some(p)));
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
            return Err("a malformed host");
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| "a port above 65535")?)
        }
        Some(_) => return Err("a port that is not a number"),
    };
    Ok((host.to_owned(), port))
}

fn parse_uri_params(text: &str) -> Result<Vec<Param>, SipError> {
    text.split(';')
        .map(|p| {
            let (name, value) = p.split_once('=').map_or((p, None), |(n, v)| (n, Some(v)));
            if name.is_empty() {
                return Err(SipError::BadUri { reason: "an empty parameter name" });
            }
            Ok(Param::new(name, value))
        })
        .collect()
}

/// A `name-addr` or `addr-spec` with header parameters: the value of From, To, Contact, Route,
/// Record-Route (§20.10, §25.1).
///
/// `"Alice" <sip:alice@atlanta.com>;tag=1928301774`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Unquoted display name; written back as a quoted string.
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters after the URI: `tag`, `q`, `expires`, `lr` on routes are URI params.
    pub params: Vec<Param>,
}

impl NameAddr {
    pub fn new(uri: Uri) -> Self {
        Self { display: None, uri, params: Vec::new() }
    }

    pub fn parse(text: &str) -> Result<Self, SipError> {
        parse_name_addr(text, "name-addr")
    }

    pub fn with_display(mut self, display: &str) -> Self {
        self.display = Some(display.to_owned());
        self
    }

    pub fn with_tag(mut self, tag: &str) -> Self {
        self.params.retain(|p| !p.name.eq_ignore_ascii_case("tag"));
        self.params.push(Param::new("tag", Some(tag)));
        self
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// The dialog tag (§19.3).
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").and_then(|p| p.value.as_deref())
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(display) = &self.display {
            write_quoted(f, display)?;
            f.write_str(" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

impl FromStr for NameAddr {
    type Err = SipError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn parse_name_addr(text: &str, header: &'static str) -> Result<NameAddr, SipError> {
    let bad = |reason| SipError::BadHeaderValue { name: header, reason };
    let text = text.trim();
    let (display, rest) = if text.starts_with('"') {
        let (display, end) = unquote(text, 0).ok_or(bad("an unterminated quoted display name"))?;
        let rest = text[end..].trim_start();
        if !rest.starts_with('<') {
            return Err(bad("a quoted display name is not followed by <URI>"));
        }
        (Some(display), rest)
    } else if let Some(lt) = text.find('<') {
        let display = text[..lt].trim();
        if display.contains(['"', '>']) {
            return Err(bad("a malformed display name"));
        }
        ((!display.is_empty()).then(|| display.to_owned()), &text[lt..])
    } else {
        // addr-spec: every ';' after it starts a header parameter (§20.10).
        let (uri, params) = text.find(';').map_or((text, ""), |i| (&text[..i], &text[i..]));
        return Ok(NameAddr { display: None, uri: Uri::parse(uri)?, params: parse_header_params(params, header)? });
    };
    let gt = rest.find('>').ok_or(bad("no '>' closes the URI"))?;
    let uri = Uri::parse(rest[1..gt].trim())?;
    let params = parse_header_params(&rest[gt + 1..], header)?;
    Ok(NameAddr { display, uri, params })
}

/// `*( SEMI name [ EQUAL value ] )` with LWS allowed around the separators; a quoted value is
/// kept with its quotes.
fn parse_header_params(text: &str, header: &'static str) -> Result<Vec<Param>, SipError> {
    let bad = |reason| SipError::BadHeaderValue { name: header, reason };
    let bytes = text.as_bytes();
    let skip_ws = |mut at: usize| {
        while bytes.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
            at += 1;
        }
        at
    };
    let mut params = Vec::new();
    let mut at = skip_ws(0);
    while at < bytes.len() {
        if bytes[at] != b';' {
            return Err(bad("expected ';' before a parameter"));
        }
        at = skip_ws(at + 1);
        let start = at;
        while bytes.get(at).is_some_and(|&b| is_token_byte(b)) {
            at += 1;
        }
        if at == start {
            return Err(bad("an empty parameter name"));
        }
        let name = &text[start..at];
        at = skip_ws(at);
        let value = if bytes.get(at) == Some(&b'=') {
            at = skip_ws(at + 1);
            let start = at;
            if bytes.get(at) == Some(&b'"') {
                at = unquote(text, at).ok_or(bad("an unterminated quoted parameter value"))?.1;
            } else {
                while bytes.get(at).is_some_and(|&b| !b.is_ascii_whitespace() && !matches!(b, b';' | b',' | b'"')) {
                    at += 1;
                }
            }
            if at == start {
                return Err(bad("an empty parameter value"));
            }
            Some(&text[start..at])
        } else {
            None
        };
        params.push(Param::new(name, value));
        at = skip_ws(at);
    }
    Ok(params)
}

/// A Via entry (§20.42): `SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// `UDP`, `TCP`, `TLS`, `WS`, … as sent; compare case-insensitively.
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<Param>,
}

impl Via {
    /// Our own Via: `branch` must start with [`BRANCH_MAGIC`] for the builders to accept it.
    pub fn new(transport: &str, host: &str, port: Option<u16>, branch: &str) -> Self {
        Self {
            transport: transport.to_owned(),
            host: host.to_owned(),
            port,
            params: vec![Param::new("branch", Some(branch))],
        }
    }

    /// Asks the next hop to answer to the source port it saw (RFC 3581).
    pub fn with_rport(mut self) -> Self {
        self.params.push(Param::new("rport", None));
        self
    }

    pub fn parse(text: &str) -> Result<Self, SipError> {
        let bad = |reason| SipError::BadHeaderValue { name: "Via", reason };
        let (name, rest) = text.split_once('/').ok_or(bad("no sent-protocol"))?;
        let (version, rest) = rest.split_once('/').ok_or(bad("no sent-protocol"))?;
        if !name.trim().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" {
            return Err(bad("the protocol is not SIP/2.0"));
        }
        let rest = rest.trim_start();
        let end = rest.find(|c: char| c.is_ascii_whitespace()).ok_or(bad("no sent-by"))?;
        let transport = &rest[..end];
        if transport.is_empty() || !transport.bytes().all(is_token_byte) {
            return Err(bad("the transport is not a token"));
        }
        let rest = rest[end..].trim_start();
        let (sent_by, _) = split_host_params(rest);
        let (host, port) = parse_host_port(sent_by.trim_end()).map_err(|_| bad("a malformed sent-by"))?;
        let params = parse_header_params(&rest[sent_by.len()..], "Via")?;
        Ok(Self { transport: transport.to_owned(), host, port, params })
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    pub fn branch(&self) -> Option<&str> {
        self.param("branch").and_then(|p| p.value.as_deref())
    }

    /// The address the next hop saw the request come from (§18.2.1).
    pub fn received(&self) -> Option<&str> {
        self.param("received").and_then(|p| p.value.as_deref())
    }

    /// Whether `rport` is present, with or without a value (RFC 3581).
    pub fn has_rport(&self) -> bool {
        self.param("rport").is_some()
    }

    /// The source port the next hop filled in; `None` when absent, empty or not a port.
    pub fn rport(&self) -> Option<u16> {
        self.param("rport").and_then(|p| p.value.as_deref()).and_then(|v| v.parse().ok())
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SIP_VERSION}/{} {}", self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write_params(f, &self.params)
    }
}

/// Who refreshes the session (RFC 4028 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

/// `Session-Expires: 1800;refresher=uac` (RFC 4028 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub delta_secs: u32,
    pub refresher: Option<Refresher>,
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta_secs)?;
        match self.refresher {
            Some(Refresher::Uac) => f.write_str(";refresher=uac"),
            Some(Refresher::Uas) => f.write_str(";refresher=uas"),
            None => Ok(()),
        }
    }
}

/// Compact header names (§7.3.3 and the RFCs that registered one since).
const COMPACT_FORMS: [(u8, &str); 20] = [
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'd', "Request-Disposition"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'j', "Reject-Contact"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'n', "Identity-Info"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// The full name of a compact header name (`i` → `Call-ID`); any other name unchanged.
pub fn full_header_name(name: &str) -> &str {
    match name.as_bytes() {
        [letter] => {
            let letter = letter.to_ascii_lowercase();
            COMPACT_FORMS.iter().find(|(c, _)| *c == letter).map_or(name, |(_, full)| full)
        }
        _ => name,
    }
}

/// Whether two header names denote the same header: case-insensitive, compact forms expanded.
pub fn same_header(a: &str, b: &str) -> bool {
    full_header_name(a).eq_ignore_ascii_case(full_header_name(b))
}

/// One header line, unfolded: a token name as sent and a value without surrounding whitespace,
/// CR, LF or other controls (tabs allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    name: String,
    value: String,
}

impl Header {
    /// Checks what a peer would otherwise be sent: the name must be a token, the value must hold
    /// no control character (no CR/LF injection). Content-Length is refused: the writer owns it.
    pub fn new(name: &str, value: &str) -> Result<Self, SipError> {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(SipError::Unsendable { what: "a header name that is not a token" });
        }
        if same_header(name, "Content-Length") {
            return Err(SipError::Unsendable { what: "Content-Length, which is derived from the body" });
        }
        if has_control(value) {
            return Err(SipError::Unsendable { what: "a header value with a control character" });
        }
        Ok(Self { name: name.to_owned(), value: value.trim_ascii().to_owned() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether this header is `name` (case-insensitive, compact forms expanded).
    pub fn is(&self, name: &str) -> bool {
        same_header(&self.name, name)
    }
}

/// The header section in order. Lookups are by name, case-insensitive, compact forms included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|h| h.is(name)).map(Header::value)
    }

    /// Every value of `name`, one per header line, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |h| h.is(name)).map(Header::value)
    }

    /// The elements of a list header (Via, Contact, Route, Allow, Supported, …) across all its
    /// lines, split on the commas that are outside quoted strings and `<…>`. Use it only for
    /// headers whose grammar is a comma list: a challenge or a date contains commas too.
    pub fn list<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        self.get_all(name).flat_map(split_list).collect()
    }

    pub fn push(&mut self, name: &str, value: &str) -> Result<(), SipError> {
        self.0.push(Header::new(name, value)?);
        Ok(())
    }

    /// Replaces the first `name` in place and removes the others, or appends.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SipError> {
        let header = Header::new(name, value)?;
        match self.0.iter().position(|h| h.is(name)) {
            Some(i) => {
                self.0[i] = header;
                let mut seen = 0;
                self.0.retain(|h| {
                    let keep = !h.is(name) || seen == 0;
                    seen += usize::from(h.is(name));
                    keep
                });
            }
            None => self.0.push(header),
        }
        Ok(())
    }

    /// Removes every `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|h| !h.is(name));
        before - self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Splits a list header value on top-level commas; empty elements (`a,,b`) are dropped, as the
/// `#rule` allows.
fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut in_quotes, mut escaped, mut in_angle) = (false, false, false);
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = false;
            }
            continue;
        }
        if in_angle {
            in_angle = b != b'>';
            continue;
        }
        match b {
            b'"' => in_quotes = true,
            b'<' => in_angle = true,
            b',' => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// How the message arrived, which decides what a missing Content-Length means (§18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// UDP: no Content-Length means the body runs to the end of the datagram, and octets past
    /// a Content-Length are discarded.
    Datagram,
    /// TCP/TLS: one frame cut by [`frame_len`]; Content-Length is required and must match.
    Stream,
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
fn find_header_end(msg: &[u8]) -> Result<Option<usize>, SipError> {
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
fn physical_lines(head: &[u8]) -> Vec<(usize, &[u8])> {
    head.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .take_while(|(_, line)| !line.is_empty())
        .collect()
}

struct RawHeader<'a> {
    line: usize,
    name: &'a [u8],
    value: Cow<'a, [u8]>,
}

/// Unfolds the header lines (everything after the start line): a line that starts with SP or
/// HTAB continues the previous value, joined by one SP (§7.3.1).
fn raw_headers<'a>(lines: &[(usize, &'a [u8])]) -> Result<Vec<RawHeader<'a>>, SipError> {
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

fn content_length(headers: &[RawHeader<'_>]) -> Result<Option<usize>, SipError> {
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
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7F
}

fn has_control(text: &str) -> bool {
    text.bytes().any(is_control)
}

fn checked_text(line: usize, bytes: &[u8]) -> Result<&str, SipError> {
    if bytes.iter().any(|&b| is_control(b)) {
        return Err(SipError::ControlCharacter { line });
    }
    std::str::from_utf8(bytes).map_err(|_| SipError::NotUtf8 { line })
}

fn parse_start_line(line: &str) -> Result<StartLine, SipError> {
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

fn status_code(text: &str) -> Option<u16> {
    if text.len() != 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|code| (100..=699).contains(code))
}

/// A decimal header value that fits `u32`.
fn header_u32(value: &str, name: &'static str) -> Result<u32, SipError> {
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

    fn required(&self, name: &'static str) -> Result<&str, SipError> {
        self.headers.get(name).ok_or(SipError::MissingHeader { name })
    }

    pub fn call_id(&self) -> Result<&str, SipError> {
        let value = self.required("Call-ID")?;
        if value.is_empty() || value.contains(char::is_whitespace) {
            return Err(SipError::BadHeaderValue { name: "Call-ID", reason: "empty or contains whitespace" });
        }
        Ok(value)
    }

    /// `CSeq: 314159 INVITE` → `(314159, Method::Invite)`.
    pub fn cseq(&self) -> Result<(u32, Method), SipError> {
        let value = self.required("CSeq")?;
        let bad = |reason| SipError::BadHeaderValue { name: "CSeq", reason };
        let (number, method) = value.split_once([' ', '\t']).ok_or(bad("not `number METHOD`"))?;
        let number = header_u32(number, "CSeq")?;
        let method = Method::parse(method.trim()).map_err(|_| bad("the method is not a token"))?;
        Ok((number, method))
    }

    pub fn from(&self) -> Result<NameAddr, SipError> {
        parse_name_addr(self.required("From")?, "From")
    }

    pub fn to(&self) -> Result<NameAddr, SipError> {
        parse_name_addr(self.required("To")?, "To")
    }

    /// Every Via entry, topmost first, across all Via lines.
    pub fn via(&self) -> Result<Vec<Via>, SipError> {
        let entries = self.headers.list("Via");
        if entries.is_empty() {
            return Err(SipError::MissingHeader { name: "Via" });
        }
        entries.into_iter().map(Via::parse).collect()
    }

    pub fn top_via(&self) -> Result<Via, SipError> {
        let top = self.headers.list("Via").into_iter().next().ok_or(SipError::MissingHeader { name: "Via" })?;
        Via::parse(top)
    }

    /// Contact entries in order; empty when there is none. The REGISTER wildcard `*` is refused.
    pub fn contact(&self) -> Result<Vec<NameAddr>, SipError> {
        self.name_addr_list("Contact")
    }

    pub fn route(&self) -> Result<Vec<NameAddr>, SipError> {
        self.name_addr_list("Route")
    }

    pub fn record_route(&self) -> Result<Vec<NameAddr>, SipError> {
        self.name_addr_list("Record-Route")
    }

    fn name_addr_list(&self, name: &'static str) -> Result<Vec<NameAddr>, SipError> {
        self.headers
            .list(name)
            .into_iter()
            .map(|entry| {
                if entry == "*" {
                    Err(SipError::BadHeaderValue { name, reason: "the wildcard '*' is not an address" })
                } else {
                    parse_name_addr(entry, name)
                }
            })
            .collect()
    }

    /// The methods in Allow; empty when absent.
    pub fn allow(&self) -> Result<Vec<Method>, SipError> {
        self.headers
            .list("Allow")
            .into_iter()
            .map(|m| Method::parse(m).map_err(|_| SipError::BadHeaderValue { name: "Allow", reason: "not a method" }))
            .collect()
    }

    /// Option tags in Supported (`timer`, `100rel`, …); empty when absent.
    pub fn supported(&self) -> Vec<&str> {
        self.headers.list("Supported")
    }

    /// Option tags in Require; empty when absent.
    pub fn require(&self) -> Vec<&str> {
        self.headers.list("Require")
    }

    pub fn max_forwards(&self) -> Result<Option<u8>, SipError> {
        self.headers
            .get("Max-Forwards")
            .map(|v| {
                let n = header_u32(v, "Max-Forwards")?;
                u8::try_from(n).map_err(|_| SipError::BadHeaderValue { name: "Max-Forwards", reason: "above 255" })
            })
            .transpose()
    }

    /// The Content-Type value as sent (`application/sdp`).
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get("Content-Type")
    }

    /// Whether the body is a session description.
    pub fn has_sdp(&self) -> bool {
        let media_type = self.content_type().map(|ct| ct.split(';').next().unwrap_or_default().trim());
        !self.body.is_empty() && media_type.is_some_and(|t| t.eq_ignore_ascii_case("application/sdp"))
    }

    pub fn expires(&self) -> Result<Option<u32>, SipError> {
        self.headers.get("Expires").map(|v| header_u32(v, "Expires")).transpose()
    }

    /// RFC 4028 §4: `Session-Expires: 1800;refresher=uac` (compact `x`).
    pub fn session_expires(&self) -> Result<Option<SessionExpires>, SipError> {
        let Some(value) = self.headers.get("Session-Expires") else {
            return Ok(None);
        };
        let (delta, params) = value.find(';').map_or((value, ""), |i| (&value[..i], &value[i..]));
        let delta_secs = header_u32(delta, "Session-Expires")?;
        let params = parse_header_params(params, "Session-Expires")?;
        let refresher = match find_param(&params, "refresher").map(|p| p.value.as_deref()) {
            None => None,
            Some(Some(v)) if v.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(Some(v)) if v.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            Some(_) => {
                return Err(SipError::BadHeaderValue {
                    name: "Session-Expires",
                    reason: "refresher is not uac or uas",
                });
            }
        };
        Ok(Some(SessionExpires { delta_secs, refresher }))
    }

    /// RFC 4028 §5: the smallest Session-Expires the peer accepts.
    pub fn min_se(&self) -> Result<Option<u32>, SipError> {
        self.headers.get("Min-SE").map(|v| header_u32(v.split(';').next().unwrap_or_default(), "Min-SE")).transpose()
    }

    /// The Digest challenges of a 401, in order; challenges of other schemes are skipped.
    pub fn www_authenticate(&self) -> Result<Vec<Challenge>, SipError> {
        self.challenges(AuthKind::Www)
    }

    /// The Digest challenges of a 407, in order; challenges of other schemes are skipped.
    pub fn proxy_authenticate(&self) -> Result<Vec<Challenge>, SipError> {
        self.challenges(AuthKind::Proxy)
    }

    pub fn challenges(&self, kind: AuthKind) -> Result<Vec<Challenge>, SipError> {
        let mut challenges = Vec::new();
        for value in self.headers.get_all(kind.challenge_header()) {
            match Challenge::parse(value) {
                Ok(challenge) => challenges.push(challenge),
                Err(DigestError::NotDigest) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(challenges)
    }
}

/// What a UA puts in a request it originates (§8.1.1). The caller (later the transaction and
/// dialog layers) supplies the branch, tags, Call-ID and CSeq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The Request-URI: the remote target in a dialog.
    pub uri: Uri,
    /// Our Via, with a fresh branch starting with [`BRANCH_MAGIC`].
    pub via: Via,
    /// Us, with our tag.
    pub from: NameAddr,
    /// The peer, with its tag inside a dialog.
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: u32,
    pub max_forwards: u8,
    /// The route set, in the order the request visits it (one Route line each).
    pub route: Vec<NameAddr>,
    pub contact: Option<NameAddr>,
}

impl Message {
    /// A request with the mandatory headers of §8.1.1 in the usual order: Via, Max-Forwards,
    /// Route, From, To, Call-ID, CSeq, Contact. No body.
    pub fn request(method: Method, head: &RequestHead) -> Result<Self, SipError> {
        if !head.via.branch().is_some_and(|b| b.starts_with(BRANCH_MAGIC) && b.len() > BRANCH_MAGIC.len()) {
            return Err(SipError::Unsendable { what: "a Via whose branch does not start with z9hG4bK" });
        }
        if head.from.tag().is_none() {
            return Err(SipError::Unsendable { what: "a From without a tag" });
        }
        if head.call_id.is_empty() || head.call_id.contains(char::is_whitespace) {
            return Err(SipError::Unsendable { what: "an empty Call-ID or one with whitespace" });
        }
        if head.cseq >= 1 << 31 {
            return Err(SipError::Unsendable { what: "a CSeq of 2^31 or more" });
        }
        let mut message = Self::new_request(method.clone(), head.uri.clone())?;
        let headers = &mut message.headers;
        headers.push("Via", &head.via.to_string())?;
        headers.push("Max-Forwards", &head.max_forwards.to_string())?;
        for route in &head.route {
            headers.push("Route", &route.to_string())?;
        }
        headers.push("From", &head.from.to_string())?;
        headers.push("To", &head.to.to_string())?;
        headers.push("Call-ID", &head.call_id)?;
        headers.push("CSeq", &format!("{} {method}", head.cseq))?;
        if let Some(contact) = &head.contact {
            headers.push("Contact", &contact.to_string())?;
        }
        Ok(message)
    }

    /// An INVITE; `sdp` is the offer, or `None` for a late offer (the answer's 200 carries it).
    pub fn invite(head: &RequestHead, sdp: Option<Vec<u8>>) -> Result<Self, SipError> {
        if head.contact.is_none() {
            return Err(SipError::Unsendable { what: "an INVITE without a Contact" });
        }
        let mut message = Self::request(Method::Invite, head)?;
        if let Some(sdp) = sdp {
            message.set_body("application/sdp", sdp)?;
        }
        Ok(message)
    }

    /// A BYE inside a dialog: the To must carry the peer's tag.
    pub fn bye(head: &RequestHead) -> Result<Self, SipError> {
        if head.to.tag().is_none() {
            return Err(SipError::Unsendable { what: "a BYE without the peer's To tag" });
        }
        Self::request(Method::Bye, head)
    }

    pub fn options(head: &RequestHead) -> Result<Self, SipError> {
        Self::request(Method::Options, head)
    }

    /// A REGISTER binding `head.contact` for `expires_secs` (0 removes the binding).
    pub fn register(head: &RequestHead, expires_secs: u32) -> Result<Self, SipError> {
        if head.contact.is_none() {
            return Err(SipError::Unsendable { what: "a REGISTER without a Contact" });
        }
        let mut message = Self::request(Method::Register, head)?;
        message.headers.push("Expires", &expires_secs.to_string())?;
        Ok(message)
    }

    /// The CANCEL of a pending INVITE (§9.1): same Request-URI, Call-ID, From, To and CSeq number,
    /// one Via equal to the INVITE's top Via (same branch), the INVITE's Route set.
    pub fn cancel(invite: &Self) -> Result<Self, SipError> {
        let number = invite.invite_cseq()?;
        let mut message = Self::new_request(Method::Cancel, invite.request_uri_or_err()?.clone())?;
        message.copy_top_via(invite)?;
        message.headers.push("Max-Forwards", &DEFAULT_MAX_FORWARDS.to_string())?;
        message.copy_all(invite, "Route")?;
        message.copy_one(invite, "From")?;
        message.copy_one(invite, "To")?;
        message.copy_one(invite, "Call-ID")?;
        message.headers.push("CSeq", &format!("{number} CANCEL"))?;
        Ok(message)
    }

    /// The ACK for a 3xx-6xx final response to `invite` (§17.1.1.3): part of the INVITE
    /// transaction, so the same branch, and the To of the response (with its tag).
    pub fn ack_non_2xx(invite: &Self, response: &Self) -> Result<Self, SipError> {
        let number = invite.invite_cseq()?;
        if response.status_code().is_none_or(|code| code < 300) {
            return Err(SipError::WrongMessage { expected: "a 3xx-6xx response" });
        }
        let mut message = Self::new_request(Method::Ack, invite.request_uri_or_err()?.clone())?;
        message.copy_top_via(invite)?;
        message.headers.push("Max-Forwards", &DEFAULT_MAX_FORWARDS.to_string())?;
        message.copy_all(invite, "Route")?;
        message.copy_one(invite, "From")?;
        message.copy_one(response, "To")?;
        message.copy_one(invite, "Call-ID")?;
        message.headers.push("CSeq", &format!("{number} ACK"))?;
        Ok(message)
    }

    /// The ACK for a 2xx to `invite` (§13.2.2.4): a new transaction (so `via` carries a new
    /// branch) sent to the 2xx's Contact through the route set, which is the 2xx's
    /// Record-Route reversed. It carries the INVITE's credentials, and `body` when the INVITE
    /// had no offer (the answer then goes here). Loose routing is assumed (every proxy in the
    /// route set puts `;lr` in its Record-Route, as RFC 3261 proxies do); the strict-routing
    /// rewrite of §12.2.1.1 is not done.
    pub fn ack_2xx(invite: &Self, response: &Self, via: &Via, body: Option<Vec<u8>>) -> Result<Self, SipError> {
        let number = invite.invite_cseq()?;
        if !response.status_code().is_some_and(|code| (200..300).contains(&code)) {
            return Err(SipError::WrongMessage { expected: "a 2xx response" });
        }
        let target = response.contact()?.into_iter().next().ok_or(SipError::MissingHeader { name: "Contact" })?;
        let mut message = Self::new_request(Method::Ack, target.uri)?;
        message.headers.push("Via", &via.to_string())?;
        message.headers.push("Max-Forwards", &DEFAULT_MAX_FORWARDS.to_string())?;
        for route in response.headers.list("Record-Route").into_iter().rev() {
            message.headers.push("Route", route)?;
        }
        message.copy_one(invite, "From")?;
        message.copy_one(response, "To")?;
        message.copy_one(invite, "Call-ID")?;
        message.headers.push("CSeq", &format!("{number} ACK"))?;
        message.copy_all(invite, "Authorization")?;
        message.copy_all(invite, "Proxy-Authorization")?;
        if let Some(body) = body {
            message.set_body("application/sdp", body)?;
        }
        Ok(message)
    }

    /// A response to `request` (§8.2.6.2): its Via lines, From, To, Call-ID and CSeq copied;
    /// `to_tag` added to the To unless it already has one (pass `None` for a 100 Trying);
    /// Record-Route copied into the 101-299 responses to an INVITE, which create a dialog
    /// (§12.1.1). Headers the response needs beyond these (Contact, …) are the caller's.
    pub fn response(request: &Self, code: u16, reason: &str, to_tag: Option<&str>) -> Result<Self, SipError> {
        let Some(method) = request.method() else {
            return Err(SipError::WrongMessage { expected: "a request" });
        };
        let mut message = Self::new_response(code, reason)?;
        if request.headers.get("Via").is_none() {
            return Err(SipError::MissingHeader { name: "Via" });
        }
        message.copy_all(request, "Via")?;
        message.copy_one(request, "From")?;
        let to = request.required("To")?;
        match to_tag {
            Some(tag) if request.to()?.tag().is_none() => {
                if tag.is_empty() || !tag.bytes().all(is_token_byte) {
                    return Err(SipError::Unsendable { what: "a To tag that is not a token" });
                }
                // Appending keeps the peer's exact To; `;tag` is a header parameter in both the
                // name-addr and the addr-spec form (§20.10).
                message.headers.push("To", &format!("{to};tag={tag}"))?;
            }
            _ => message.headers.push("To", to)?,
        }
        message.copy_one(request, "Call-ID")?;
        message.copy_one(request, "CSeq")?;
        if *method == Method::Invite && (101..300).contains(&code) {
            message.copy_all(request, "Record-Route")?;
        }
        Ok(message)
    }

    fn invite_cseq(&self) -> Result<u32, SipError> {
        if self.method() != Some(&Method::Invite) {
            return Err(SipError::WrongMessage { expected: "an INVITE request" });
        }
        Ok(self.cseq()?.0)
    }

    fn request_uri_or_err(&self) -> Result<&Uri, SipError> {
        self.request_uri().ok_or(SipError::WrongMessage { expected: "a request" })
    }

    fn copy_one(&mut self, from: &Self, name: &'static str) -> Result<(), SipError> {
        let value = from.required(name)?;
        self.headers.push(name, value)
    }

    fn copy_all(&mut self, from: &Self, name: &'static str) -> Result<(), SipError> {
        for value in from.headers.get_all(name) {
            self.headers.push(name, value)?;
        }
        Ok(())
    }

    fn copy_top_via(&mut self, from: &Self) -> Result<(), SipError> {
        let top = from.headers.list("Via").into_iter().next().ok_or(SipError::MissingHeader { name: "Via" })?;
        self.headers.push("Via", top)
    }
}

/// The standard reason phrase of a status code (§21), or `""`.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// The quoted-string at `start` (which holds `"`): its unescaped text and the index after the
/// closing quote.
fn unquote(text: &str, start: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = text.get(start + 1..)?.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, start + 1 + i + 1)),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in text.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        f.write_char(c)?;
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inbound call as a trunk sends it over UDP: two Record-Routes, a display name that is
    /// the caller's number, session timer, an early offer with PCMU/PCMA/G.722 + telephone-event.
    const INVITE_GOLDEN: &str = "INVITE sip:+14155550123@203.0.113.10:5060;transport=udp SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.76.120.10:5060;branch=z9hG4bK-524287-1---8f7a3c0e5c4b2d1a;rport\r\n\
        Max-Forwards: 69\r\n\
        Record-Route: <sip:192.76.120.10;lr;r2=on>\r\n\
        Record-Route: <sip:10.13.0.5;lr;r2=on>\r\n\
        From: \"+12125550199\" <sip:+12125550199@sip.telnyx.com>;tag=as5f1e7c3d\r\n\
        To: <sip:+14155550123@203.0.113.10>\r\n\
        Call-ID: 9c1e2f3a-4b5d-4e6f-8a9b-0c1d2e3f4a5b\r\n\
        CSeq: 102 INVITE\r\n\
        Contact: <sip:+12125550199@192.76.120.10:5060;transport=udp>\r\n\
        Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE, PRACK\r\n\
        Supported: timer, replaces, 100rel\r\n\
        Session-Expires: 1800;refresher=uac\r\n\
        Min-SE: 90\r\n\
        User-Agent: Telnyx SIP Proxy\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 283\r\n\
        \r\n\
        v=0\r\n\
        o=- 1700000000 1700000000 IN IP4 192.76.120.20\r\n\
        s=Telnyx\r\n\
        c=IN IP4 192.76.120.20\r\n\
        t=0 0\r\n\
        m=audio 23456 RTP/AVP 0 8 9 101\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:9 G722/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-16\r\n\
        a=ptime:20\r\n\
        a=sendrecv\r\n\
        a=rtcp:23457\r\n";

    /// A registrar's challenge to our REGISTER.
    const CHALLENGE_GOLDEN: &str = "SIP/2.0 401 Unauthorized\r\n\
        Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK7f3a2b1c;rport=5060;received=203.0.113.10\r\n\
        From: <sip:agentline@sip.telnyx.com>;tag=8f2c1a\r\n\
        To: <sip:agentline@sip.telnyx.com>;tag=SDf8a9s7\r\n\
        Call-ID: reg-5b1f0c2e@198.51.100.7\r\n\
        CSeq: 1 REGISTER\r\n\
        WWW-Authenticate: Digest realm=\"sip.telnyx.com\", nonce=\"YjM5ZDQ4NmEtZjA2Mi00\", qop=\"auth\", algorithm=MD5\r\n\
        WWW-Authenticate: Digest realm=\"sip.telnyx.com\", nonce=\"c2hhMjU2\", qop=\"auth\", algorithm=SHA-256\r\n\
        Content-Length: 0\r\n\
        \r\n";

    /// A 180 in compact form, as size-conscious proxies send it.
    const RINGING_COMPACT: &str = "SIP/2.0 180 Ringing\r\n\
        v: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKa1b2c3;rport=62001;received=203.0.113.10\r\n\
        f: <sip:+14155550123@sip.telnyx.com>;tag=9fxced76sl\r\n\
        t: <sip:+12125550199@sip.telnyx.com>;tag=314159\r\n\
        i: 3848276298220188511@198.51.100.7\r\n\
        CSeq: 1 INVITE\r\n\
        m: <sip:+12125550199@192.76.120.10:5060>\r\n\
        k: 100rel, timer\r\n\
        x: 600\r\n\
        l: 0\r\n\
        \r\n";

    /// Folding, LWS around colons and slashes, odd case, multiple Vias in one line and across
    /// lines, a Contact list whose display name and user part contain commas; LF-only endings.
    const FOLDED: &str = "OPTIONS sip:agentline@198.51.100.7 SIP/2.0\n\
        Via: SIP/2.0/TCP proxy2.example.net:5060;branch=z9hG4bK721e418c4.1, SIP/2.0/UDP\n  \
        proxy1.example.net;branch=z9hG4bK-2\n\
        Via  : SIP / 2.0 / UDP 192.0.2.4:5070;branch=z9hG4bK-uac;received=192.0.2.99;rport=40000\n\
        TO :\n <sip:agentline@198.51.100.7>\n\
        from: \"Carol \\\"C\\\" Example\" <sip:carol@example.net;user=phone>\n\t;tag=1928301774\n\
        Call-ID: a84b4c76e66710@pc33.example.net\n\
        cSeq: 63104 OPTIONS\n\
        Contact: \"Carol, at home\" <sip:carol,home@192.0.2.4>;q=0.7, <sip:carol@mobile.example.net>;expires=60,\n \
        sip:carol@192.0.2.5;q=0.1\n\
        Max-Forwards: 70\n\
        Accept: application/sdp\n\
        Content-Length: 0\n\
        \n";

    fn parse_udp(text: &str) -> Message {
        Message::parse(text.as_bytes(), Framing::Datagram).expect("golden message parses")
    }

    fn assert_round_trip(message: &Message) {
        let bytes = message.to_bytes();
        assert_eq!(frame_len(&bytes), Ok(Some(bytes.len())));
        assert_eq!(Message::parse(&bytes, Framing::Stream).as_ref(), Ok(message));
        assert_eq!(Message::parse(&bytes, Framing::Datagram).as_ref(), Ok(message));
    }

    #[test]
    fn golden_invite_from_a_trunk() {
        let invite = parse_udp(INVITE_GOLDEN);
        assert_eq!(invite.method(), Some(&Method::Invite));
        let uri = invite.request_uri().expect("a request");
        assert_eq!(
            (uri.scheme, uri.user.as_deref(), uri.host.as_str()),
            (Scheme::Sip, Some("+14155550123"), "203.0.113.10")
        );
        assert_eq!((uri.port, uri.transport()), (Some(5060), Some("udp")));
        assert_eq!(uri.phone_number().map(E164::into_string), Ok("+14155550123".to_owned()));
        assert_eq!(invite.call_id(), Ok("9c1e2f3a-4b5d-4e6f-8a9b-0c1d2e3f4a5b"));
        assert_eq!(invite.cseq(), Ok((102, Method::Invite)));
        let from = invite.from().expect("From parses");
        assert_eq!((from.display.as_deref(), from.tag()), (Some("+12125550199"), Some("as5f1e7c3d")));
        assert_eq!(from.uri.phone_number().map(E164::into_string), Ok("+12125550199".to_owned()));
        assert_eq!(invite.to().expect("To parses").tag(), None);
        let via = invite.via().expect("Via parses");
        assert_eq!(via.len(), 1);
        assert_eq!(
            (via[0].transport.as_str(), via[0].host.as_str(), via[0].port),
            ("UDP", "192.76.120.10", Some(5060))
        );
        assert_eq!(via[0].branch(), Some("z9hG4bK-524287-1---8f7a3c0e5c4b2d1a"));
        assert!(via[0].has_rport());
        assert_eq!((via[0].rport(), via[0].received()), (None, None));
        let rr = invite.record_route().expect("Record-Route parses");
        assert_eq!(rr.iter().map(|r| r.uri.host.as_str()).collect::<Vec<_>>(), ["192.76.120.10", "10.13.0.5"]);
        assert!(rr[0].uri.param("lr").is_some());
        assert_eq!(invite.contact().expect("Contact parses")[0].uri.port, Some(5060));
        let allow = invite.allow().expect("Allow parses");
        assert_eq!(allow.len(), 10);
        assert_eq!((allow.first(), allow.last()), (Some(&Method::Invite), Some(&Method::Prack)));
        assert_eq!(invite.supported(), ["timer", "replaces", "100rel"]);
        assert_eq!(
            invite.session_expires(),
            Ok(Some(SessionExpires { delta_secs: 1800, refresher: Some(Refresher::Uac) }))
        );
        assert_eq!(invite.min_se(), Ok(Some(90)));
        assert_eq!(invite.max_forwards(), Ok(Some(69)));
        assert_eq!(invite.expires(), Ok(None));
        assert!(invite.has_sdp());
        assert_eq!(invite.body().len(), 283);
        assert!(invite.body().starts_with(b"v=0\r\n") && invite.body().ends_with(b"a=rtcp:23457\r\n"));
        assert_eq!(invite.header("content-length"), None, "Content-Length is framing, not a header");
        // Canonical input: the writer reproduces it byte for byte.
        assert_eq!(String::from_utf8(invite.to_bytes()).expect("UTF-8"), INVITE_GOLDEN);
        assert_round_trip(&invite);
    }

    #[test]
    fn golden_challenge() {
        let challenge = parse_udp(CHALLENGE_GOLDEN);
        assert_eq!((challenge.status_code(), challenge.reason()), (Some(401), Some("Unauthorized")));
        assert_eq!(challenge.cseq(), Ok((1, Method::Register)));
        let via = challenge.top_via().expect("Via parses");
        assert_eq!((via.rport(), via.received()), (Some(5060), Some("203.0.113.10")));
        let challenges = challenge.www_authenticate().expect("challenges parse");
        assert_eq!(challenges.len(), 2);
        assert_eq!(challenges[0].nonce, "YjM5ZDQ4NmEtZjA2Mi00");
        assert_eq!(challenges[1].algorithm, super::super::digest::Algorithm::Sha256);
        assert_eq!(challenge.proxy_authenticate(), Ok(vec![]));
        assert!(challenge.body().is_empty() && !challenge.has_sdp());
        assert_eq!(String::from_utf8(challenge.to_bytes()).expect("UTF-8"), CHALLENGE_GOLDEN);
        assert_round_trip(&challenge);
    }

    #[test]
    fn golden_ringing_with_compact_headers() {
        let ringing = parse_udp(RINGING_COMPACT);
        assert_eq!(ringing.status_code(), Some(180));
        assert_eq!(ringing.call_id(), Ok("3848276298220188511@198.51.100.7"));
        assert_eq!(ringing.from().expect("f").tag(), Some("9fxced76sl"));
        assert_eq!(ringing.to().expect("t").tag(), Some("314159"));
        assert_eq!(ringing.top_via().expect("v").rport(), Some(62001));
        assert_eq!(ringing.contact().expect("m")[0].uri.user.as_deref(), Some("+12125550199"));
        assert_eq!(ringing.supported(), ["100rel", "timer"]);
        assert_eq!(ringing.session_expires(), Ok(Some(SessionExpires { delta_secs: 600, refresher: None })));
        assert_eq!(ringing.header("Call-ID"), ringing.header("i"));
        assert_eq!(ringing.headers().get("I"), Some("3848276298220188511@198.51.100.7"));
        // Compact names are kept as sent; `l` is rewritten as Content-Length.
        let text = String::from_utf8(ringing.to_bytes()).expect("UTF-8");
        assert!(
            text.contains("\r\ni: 3848276298220188511@198.51.100.7\r\n")
                && text.ends_with("\r\nContent-Length: 0\r\n\r\n")
        );
        assert_round_trip(&ringing);
    }

    #[test]
    fn golden_folded_headers_and_via_lists() {
        let options = parse_udp(FOLDED);
        assert_eq!(options.method(), Some(&Method::Options));
        let via = options.via().expect("Via parses");
        let hosts: Vec<_> = via.iter().map(|v| (v.transport.as_str(), v.host.as_str(), v.port)).collect();
        assert_eq!(
            hosts,
            [
                ("TCP", "proxy2.example.net", Some(5060)),
                ("UDP", "proxy1.example.net", None),
                ("UDP", "192.0.2.4", Some(5070))
            ]
        );
        assert_eq!(via[1].branch(), Some("z9hG4bK-2"));
        assert_eq!((via[2].received(), via[2].rport()), (Some("192.0.2.99"), Some(40000)));
        assert_eq!(options.to().expect("folded To").uri.user.as_deref(), Some("agentline"));
        let from = options.from().expect("folded From");
        assert_eq!((from.display.as_deref(), from.tag()), (Some("Carol \"C\" Example"), Some("1928301774")));
        assert_eq!(from.uri.param("user").and_then(|p| p.value.as_deref()), Some("phone"));
        assert_eq!(options.cseq(), Ok((63104, Method::Options)));
        let contacts = options.contact().expect("Contact list");
        assert_eq!(contacts.len(), 3);
        assert_eq!(contacts[0].display.as_deref(), Some("Carol, at home"));
        assert_eq!(contacts[0].uri.user.as_deref(), Some("carol,home"));
        assert_eq!(contacts[0].param("q").and_then(|p| p.value.as_deref()), Some("0.7"));
        assert_eq!(contacts[1].param("expires").and_then(|p| p.value.as_deref()), Some("60"));
        // addr-spec form: `;q=0.1` is a header parameter, not a URI parameter.
        assert_eq!((contacts[2].uri.params.len(), contacts[2].param("q").is_some()), (0, true));
        assert_eq!(
            options.headers().get("Via"),
            Some(
                "SIP/2.0/TCP proxy2.example.net:5060;branch=z9hG4bK721e418c4.1, SIP/2.0/UDP proxy1.example.net;branch=z9hG4bK-2"
            )
        );
        assert_round_trip(&options);
    }

    #[test]
    fn stream_framing() {
        let invite = INVITE_GOLDEN.as_bytes();
        let ringing = RINGING_COMPACT.as_bytes();
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(invite);
        stream.extend_from_slice(ringing);
        assert_eq!(keepalive_len(&stream), 4);
        // Every strict prefix of the first message needs more bytes.
        for cut in 0..4 + invite.len() {
            assert_eq!(frame_len(&stream[..cut]), Ok(None), "cut at {cut}");
        }
        let first = frame_len(&stream).expect("valid").expect("complete");
        assert_eq!(first, 4 + invite.len());
        assert_eq!(Message::parse(&stream[..first], Framing::Stream), Ok(parse_udp(INVITE_GOLDEN)));
        let rest = &stream[first..];
        assert_eq!(frame_len(rest), Ok(Some(ringing.len())));
        assert_eq!(frame_len(b"\r\n\r\n"), Ok(None));
        assert_eq!(frame_len(b""), Ok(None));
    }

    #[test]
    fn datagram_body_rules() {
        // No Content-Length: the body is the rest of the datagram.
        let no_length = "MESSAGE sip:a@b.example SIP/2.0\r\nCall-ID: x\r\n\r\nhello";
        let message = Message::parse(no_length.as_bytes(), Framing::Datagram).expect("valid");
        assert_eq!(message.body(), b"hello");
        assert_eq!(message.method(), Some(&Method::Message));
        // Octets past Content-Length are discarded (§18.3).
        let padded = "MESSAGE sip:a@b.example SIP/2.0\r\nContent-Length: 2\r\n\r\nhello";
        assert_eq!(Message::parse(padded.as_bytes(), Framing::Datagram).expect("valid").body(), b"he");
        // The same is an error on a stream.
        assert_eq!(Message::parse(padded.as_bytes(), Framing::Stream), Err(SipError::TrailingBytes { count: 3 }));
        // Extension methods and empty reasons survive.
        let odd = parse_udp("FOO sip:a@b.example SIP/2.0\r\n\r\n");
        assert_eq!(odd.method(), Some(&Method::Other("FOO".to_owned())));
        let bare = parse_udp("SIP/2.0 200\r\n\r\n");
        assert_eq!((bare.status_code(), bare.reason()), (Some(200), Some("")));
        assert_round_trip(&bare);
    }

    #[test]
    fn uris() {
        let cases = [
            "sip:alice@atlanta.com",
            "sips:alice:secretword@atlanta.com;transport=tcp",
            "sip:+1-212-555-1212:1234@gateway.com;user=phone",
            "sip:alice@192.0.2.4:5061",
            "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
            "sip:alice;day=tuesday@atlanta.com",
            "sip:[2001:db8::10]:5070;transport=udp;lr",
            "sip:[2001:db8::10]",
            "tel:+1-201-555-0123;phone-context=example.com",
            "sip:biloxi.com?subject=project%20x&priority=urgent",
        ];
        for case in cases {
            let uri = Uri::parse(case).expect(case);
            assert_eq!(uri.to_string(), case);
        }
        let v6 = Uri::parse("sip:[2001:db8::10]:5070;transport=udp;lr").expect("valid");
        assert_eq!((v6.host.as_str(), v6.port, v6.transport()), ("[2001:db8::10]", Some(5070), Some("udp")));
        let pw = Uri::parse("sips:alice:secretword@atlanta.com").expect("valid");
        assert_eq!(
            (pw.scheme, pw.user.as_deref(), pw.password.as_deref()),
            (Scheme::Sips, Some("alice"), Some("secretword"))
        );
        let headers = Uri::parse("sip:biloxi.com?subject=project%20x&priority=urgent").expect("valid");
        assert_eq!(
            headers.headers,
            vec![Param::new("subject", Some("project%20x")), Param::new("priority", Some("urgent"))]
        );
        assert_eq!(Uri::parse("SIP:Alice@Atlanta.COM").expect("valid").to_string(), "sip:Alice@Atlanta.COM");
        assert_eq!(
            Uri::sip(Some("bob"), "b.example").with_port(5080).with_param("transport", Some("tcp")).to_string(),
            "sip:bob@b.example:5080;transport=tcp"
        );
    }

    #[test]
    fn e164_normalisation() {
        for (user, expected) in [
            ("+14155550123", "+14155550123"),
            ("14155550123", "+14155550123"),
            ("+1-415-555-0123", "+14155550123"),
            ("+1(415)555.0123", "+14155550123"),
            ("+14155550123;npdi;rn=+14155550000", "+14155550123"),
            ("4915112345678", "+4915112345678"),
        ] {
            assert_eq!(normalize_e164(user).map(E164::into_string), Ok(expected.to_owned()), "{user}");
        }
        for (user, source) in [
            ("alice", E164Error::NotDigits),
            ("+1415555012a", E164Error::NotDigits),
            ("004915112345678", E164Error::LeadingZero),
            ("+1234567", E164Error::BadLength),
            ("", E164Error::BadLength),
            ("++14155550123", E164Error::NotDigits),
        ] {
            assert_eq!(normalize_e164(user), Err(SipError::NotAPhoneNumber { source }), "{user}");
        }
        let tel = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").expect("valid");
        assert_eq!(tel.phone_number().map(E164::into_string), Ok("+12015550123".to_owned()));
        assert_eq!(
            Uri::parse("sip:b.example").expect("valid").phone_number(),
            Err(SipError::NotAPhoneNumber { source: E164Error::BadLength })
        );
    }

    fn our_head() -> RequestHead {
        RequestHead {
            uri: Uri::parse("sip:+14155550123@sip.telnyx.com").expect("valid"),
            via: Via::new("UDP", "198.51.100.7", Some(5060), "z9hG4bK74bf9").with_rport(),
            from: NameAddr::new(Uri::sip(Some("+12125550199"), "198.51.100.7"))
                .with_display("Agent")
                .with_tag("9fxced76sl"),
            to: NameAddr::new(Uri::sip(Some("+14155550123"), "sip.telnyx.com")),
            call_id: "3848276298220188511@198.51.100.7".to_owned(),
            cseq: 1,
            max_forwards: DEFAULT_MAX_FORWARDS,
            route: vec![NameAddr::new(Uri::sip(None, "edge.telnyx.com").with_param("lr", None))],
            contact: Some(NameAddr::new(Uri::sip(Some("agentline"), "198.51.100.7").with_port(5060))),
        }
    }

    #[test]
    fn builds_an_invite_byte_for_byte() {
        let sdp = b"v=0\r\n".to_vec();
        let invite = Message::invite(&our_head(), Some(sdp)).expect("valid head");
        let expected = "INVITE sip:+14155550123@sip.telnyx.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK74bf9;rport\r\n\
            Max-Forwards: 70\r\n\
            Route: <sip:edge.telnyx.com;lr>\r\n\
            From: \"Agent\" <sip:+12125550199@198.51.100.7>;tag=9fxced76sl\r\n\
            To: <sip:+14155550123@sip.telnyx.com>\r\n\
            Call-ID: 3848276298220188511@198.51.100.7\r\n\
            CSeq: 1 INVITE\r\n\
            Contact: <sip:agentline@198.51.100.7:5060>\r\n\
            Content-Type: application/sdp\r\n\
            Content-Length: 5\r\n\
            \r\n\
            v=0\r\n";
        assert_eq!(String::from_utf8(invite.to_bytes()).expect("UTF-8"), expected);
        assert_round_trip(&invite);
        assert_eq!(Message::invite(&our_head(), None).expect("late offer").body(), b"");
    }

    #[test]
    fn builds_cancel_and_acks() {
        let mut invite = Message::invite(&our_head(), None).expect("valid");
        invite.headers_mut().push("Proxy-Authorization", "Digest username=\"u\"").expect("valid header");
        let cancel = Message::cancel(&invite).expect("cancel");
        assert_eq!(cancel.method(), Some(&Method::Cancel));
        assert_eq!(cancel.request_uri(), invite.request_uri());
        assert_eq!(cancel.top_via().expect("Via").branch(), Some("z9hG4bK74bf9"), "same branch as the INVITE");
        assert_eq!(cancel.cseq(), Ok((1, Method::Cancel)));
        for name in ["From", "To", "Call-ID", "Route"] {
            assert_eq!(cancel.header(name), invite.header(name), "{name}");
        }
        assert_eq!(cancel.header("Contact"), None);
        assert_round_trip(&cancel);

        let terminated = "SIP/2.0 487 Request Terminated\r\n\
            Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK74bf9;rport=5060\r\n\
            From: \"Agent\" <sip:+12125550199@198.51.100.7>;tag=9fxced76sl\r\n\
            To: <sip:+14155550123@sip.telnyx.com>;tag=8321234356\r\n\
            Call-ID: 3848276298220188511@198.51.100.7\r\n\
            CSeq: 1 INVITE\r\n\
            Content-Length: 0\r\n\r\n";
        let terminated = parse_udp(terminated);
        let ack = Message::ack_non_2xx(&invite, &terminated).expect("ack");
        assert_eq!(ack.top_via().expect("Via").branch(), Some("z9hG4bK74bf9"));
        assert_eq!(ack.to().expect("To").tag(), Some("8321234356"));
        assert_eq!(ack.cseq(), Ok((1, Method::Ack)));
        assert_eq!(ack.request_uri(), invite.request_uri());
        assert_eq!(ack.header("Proxy-Authorization"), None);

        let ok = "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK74bf9;rport=5060\r\n\
            Record-Route: <sip:edge.telnyx.com;lr>, <sip:core.telnyx.com;lr>\r\n\
            Record-Route: <sip:media.telnyx.com;lr>\r\n\
            From: \"Agent\" <sip:+12125550199@198.51.100.7>;tag=9fxced76sl\r\n\
            To: <sip:+14155550123@sip.telnyx.com>;tag=8321234356\r\n\
            Call-ID: 3848276298220188511@198.51.100.7\r\n\
            CSeq: 1 INVITE\r\n\
            Contact: <sip:+14155550123@192.76.120.10:5060;transport=udp>\r\n\
            Content-Length: 0\r\n\r\n";
        let ok = parse_udp(ok);
        let new_via = Via::new("UDP", "198.51.100.7", Some(5060), "z9hG4bKack2").with_rport();
        let ack = Message::ack_2xx(&invite, &ok, &new_via, None).expect("ack");
        assert_eq!(
            ack.request_uri().map(ToString::to_string).as_deref(),
            Some("sip:+14155550123@192.76.120.10:5060;transport=udp")
        );
        assert_eq!(ack.top_via().expect("Via").branch(), Some("z9hG4bKack2"));
        let routes: Vec<_> = ack.route().expect("Route").into_iter().map(|r| r.uri.host).collect();
        assert_eq!(routes, ["media.telnyx.com", "core.telnyx.com", "edge.telnyx.com"], "Record-Route reversed");
        assert_eq!(ack.header("Proxy-Authorization"), Some("Digest username=\"u\""));
        assert_eq!(ack.cseq(), Ok((1, Method::Ack)));
        assert_round_trip(&ack);

        assert_eq!(Message::ack_non_2xx(&invite, &ok), Err(SipError::WrongMessage { expected: "a 3xx-6xx response" }));
        assert_eq!(
            Message::ack_2xx(&invite, &terminated, &new_via, None),
            Err(SipError::WrongMessage { expected: "a 2xx response" })
        );
        assert_eq!(Message::cancel(&cancel), Err(SipError::WrongMessage { expected: "an INVITE request" }));
        let mut no_contact = ok.clone();
        no_contact.headers_mut().remove("Contact");
        assert_eq!(
            Message::ack_2xx(&invite, &no_contact, &new_via, None),
            Err(SipError::MissingHeader { name: "Contact" })
        );
    }

    #[test]
    fn builds_responses() {
        let invite = parse_udp(INVITE_GOLDEN);
        let trying = Message::response(&invite, 100, reason_phrase(100), None).expect("100");
        assert_eq!(trying.to().expect("To").tag(), None);
        assert_eq!(trying.header("Record-Route"), None);
        let ringing = Message::response(&invite, 180, reason_phrase(180), Some("a6c85cf")).expect("180");
        assert_eq!(ringing.to().expect("To").tag(), Some("a6c85cf"));
        assert_eq!(ringing.header("To"), Some("<sip:+14155550123@203.0.113.10>;tag=a6c85cf"));
        assert_eq!(ringing.via(), invite.via());
        assert_eq!(ringing.headers().get_all("Record-Route").count(), 2);
        for name in ["From", "Call-ID", "CSeq"] {
            assert_eq!(ringing.header(name), invite.header(name), "{name}");
        }
        let expected = "SIP/2.0 180 Ringing\r\n\
            Via: SIP/2.0/UDP 192.76.120.10:5060;branch=z9hG4bK-524287-1---8f7a3c0e5c4b2d1a;rport\r\n\
            From: \"+12125550199\" <sip:+12125550199@sip.telnyx.com>;tag=as5f1e7c3d\r\n\
            To: <sip:+14155550123@203.0.113.10>;tag=a6c85cf\r\n\
            Call-ID: 9c1e2f3a-4b5d-4e6f-8a9b-0c1d2e3f4a5b\r\n\
            CSeq: 102 INVITE\r\n\
            Record-Route: <sip:192.76.120.10;lr;r2=on>\r\n\
            Record-Route: <sip:10.13.0.5;lr;r2=on>\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(String::from_utf8(ringing.to_bytes()).expect("UTF-8"), expected);
        // An in-dialog request keeps its To tag.
        let ringing_request =
            parse_udp(RINGING_COMPACT.replace("SIP/2.0 180 Ringing", "BYE sip:a@b.example SIP/2.0").as_str());
        let ok = Message::response(&ringing_request, 200, "OK", Some("other")).expect("200");
        assert_eq!(ok.to().expect("To").tag(), Some("314159"));
        assert_eq!(ok.header("Record-Route"), None);
        // Errors.
        assert_eq!(Message::response(&ok, 200, "OK", None), Err(SipError::WrongMessage { expected: "a request" }));
        assert_eq!(Message::response(&invite, 99, "", None), Err(SipError::BadStatusCode));
        assert_eq!(
            Message::response(&invite, 200, "OK", Some("a b")),
            Err(SipError::Unsendable { what: "a To tag that is not a token" })
        );
        assert_eq!(
            Message::response(&invite, 200, "OK\r\nX: y", None),
            Err(SipError::Unsendable { what: "a reason phrase with a control character" })
        );
    }

    #[test]
    fn builds_register_bye_options() {
        let mut head = our_head();
        head.uri = Uri::sip(None, "sip.telnyx.com");
        let register = Message::register(&head, 3600).expect("register");
        assert_eq!((register.expires(), register.cseq()), (Ok(Some(3600)), Ok((1, Method::Register))));
        assert_round_trip(&register);
        assert_eq!(Message::options(&head).expect("options").method(), Some(&Method::Options));
        assert_eq!(Message::bye(&head), Err(SipError::Unsendable { what: "a BYE without the peer's To tag" }));
        head.to = head.to.with_tag("8321234356");
        head.cseq = 2;
        let bye = Message::bye(&head).expect("bye");
        assert_eq!((bye.cseq(), bye.to().expect("To").tag()), (Ok((2, Method::Bye)), Some("8321234356")));

        let mut bad = our_head();
        bad.contact = None;
        assert_eq!(Message::invite(&bad, None), Err(SipError::Unsendable { what: "an INVITE without a Contact" }));
        assert_eq!(Message::register(&bad, 60), Err(SipError::Unsendable { what: "a REGISTER without a Contact" }));
        let mut bad = our_head();
        bad.via = Via::new("UDP", "h", None, "74bf9");
        assert_eq!(
            Message::options(&bad),
            Err(SipError::Unsendable { what: "a Via whose branch does not start with z9hG4bK" })
        );
        let mut bad = our_head();
        bad.from.params.clear();
        assert_eq!(Message::options(&bad), Err(SipError::Unsendable { what: "a From without a tag" }));
        let mut bad = our_head();
        bad.call_id = "a b".to_owned();
        assert_eq!(
            Message::options(&bad),
            Err(SipError::Unsendable { what: "an empty Call-ID or one with whitespace" })
        );
        let mut bad = our_head();
        bad.cseq = 1 << 31;
        assert_eq!(Message::options(&bad), Err(SipError::Unsendable { what: "a CSeq of 2^31 or more" }));
        let mut bad = our_head();
        bad.to.display = Some("evil\r\nX-Injected: 1".to_owned());
        assert_eq!(
            Message::options(&bad),
            Err(SipError::Unsendable { what: "a header value with a control character" })
        );
        let mut bad = our_head();
        bad.uri.user = Some("a b".to_owned());
        assert_eq!(
            Message::options(&bad),
            Err(SipError::Unsendable { what: "a Request-URI that does not print as itself" })
        );
        assert_eq!(
            Message::new_request(Method::Other("A B".to_owned()), Uri::sip(None, "h")),
            Err(SipError::Unsendable { what: "a method that is not a token" })
        );
    }

    #[test]
    fn headers_container() {
        let mut headers = Headers::default();
        headers.push("Supported", "timer").expect("valid");
        headers.push("k", "100rel").expect("valid");
        headers.push("Subject", "  padded  ").expect("valid");
        assert_eq!(headers.list("supported"), ["timer", "100rel"]);
        assert_eq!(headers.get("s"), Some("padded"));
        headers.set("SUPPORTED", "replaces").expect("valid");
        assert_eq!(headers.list("Supported"), ["replaces"]);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers.remove("Subject"), 1);
        assert_eq!(headers.iter().map(Header::name).collect::<Vec<_>>(), ["SUPPORTED"]);
        assert_eq!(
            headers.push("Bad Name", "x"),
            Err(SipError::Unsendable { what: "a header name that is not a token" })
        );
        assert_eq!(
            headers.push("l", "5"),
            Err(SipError::Unsendable { what: "Content-Length, which is derived from the body" })
        );
        assert_eq!(full_header_name("X"), "Session-Expires");
        assert_eq!(full_header_name("q"), "q");
        assert_eq!(split_list(r#""a,\"b" <sip:x,y@h>;p="1,2", , c"#), [r#""a,\"b" <sip:x,y@h>;p="1,2""#, "c"]);
        let mut message = Message::new_response(200, "OK").expect("valid");
        message.set_body("application/sdp", b"v=0\r\n".to_vec()).expect("small");
        assert!(message.has_sdp());
        message.set_body("application/sdp", Vec::new()).expect("empty");
        assert_eq!(message.content_type(), None);
        assert_eq!(
            message.set_body("text/plain", vec![0; MAX_BODY_LEN + 1]),
            Err(SipError::BodyTooLarge { len: MAX_BODY_LEN + 1 })
        );
    }

    fn parse_err(text: &str, framing: Framing) -> SipError {
        Message::parse(text.as_bytes(), framing).expect_err(text)
    }

    #[test]
    fn err_header_section_too_large() {
        let mut big = b"OPTIONS sip:a@b.example SIP/2.0\r\n".to_vec();
        while big.len() <= MAX_HEADER_LEN {
            big.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(frame_len(&big), Err(SipError::HeaderSectionTooLarge));
        big.extend_from_slice(b"\r\n");
        assert_eq!(Message::parse(&big, Framing::Datagram), Err(SipError::HeaderSectionTooLarge));
    }

    #[test]
    fn err_body_too_large() {
        let text = format!("SIP/2.0 200 OK\r\nContent-Length: {}\r\n\r\n", MAX_BODY_LEN + 1);
        assert_eq!(frame_len(text.as_bytes()), Err(SipError::BodyTooLarge { len: MAX_BODY_LEN + 1 }));
        let mut datagram = b"SIP/2.0 200 OK\r\n\r\n".to_vec();
        datagram.resize(datagram.len() + MAX_BODY_LEN + 1, b'x');
        assert_eq!(Message::parse(&datagram, Framing::Datagram), Err(SipError::BodyTooLarge { len: MAX_BODY_LEN + 1 }));
    }

    #[test]
    fn err_empty() {
        assert_eq!(parse_err("", Framing::Datagram), SipError::Empty);
        assert_eq!(parse_err("\r\n\r\n", Framing::Stream), SipError::Empty);
    }

    #[test]
    fn err_unterminated_headers() {
        assert_eq!(parse_err("SIP/2.0 200 OK\r\nCall-ID: x\r\n", Framing::Datagram), SipError::UnterminatedHeaders);
    }

    #[test]
    fn err_body_truncated() {
        assert_eq!(
            parse_err("SIP/2.0 200 OK\r\nl: 10\r\n\r\nabc", Framing::Datagram),
            SipError::BodyTruncated { declared: 10, available: 3 }
        );
    }

    #[test]
    fn err_missing_content_length() {
        assert_eq!(parse_err("SIP/2.0 200 OK\r\n\r\n", Framing::Stream), SipError::MissingContentLength);
        assert_eq!(frame_len(b"SIP/2.0 200 OK\r\n\r\n"), Err(SipError::MissingContentLength));
    }

    #[test]
    fn err_conflicting_content_length() {
        assert_eq!(
            parse_err("SIP/2.0 200 OK\r\nContent-Length: 0\r\nl: 1\r\n\r\nx", Framing::Datagram),
            SipError::ConflictingContentLength { first: 0, second: 1 }
        );
        // Repeating the same value is harmless.
        assert!(Message::parse(b"SIP/2.0 200 OK\r\nContent-Length: 1\r\nl: 1\r\n\r\nx", Framing::Stream).is_ok());
    }

    #[test]
    fn err_trailing_bytes() {
        assert_eq!(
            parse_err("SIP/2.0 200 OK\r\nl: 0\r\n\r\nxy", Framing::Stream),
            SipError::TrailingBytes { count: 2 }
        );
    }

    #[test]
    fn err_bad_start_line() {
        for line in
            ["INVITE sip:a@b.example\r\n\r\n", "INVITE sip:a@b.example SIP/2.0 extra\r\n\r\n", "SIP/2.0\r\n\r\n"]
        {
            assert_eq!(parse_err(line, Framing::Datagram), SipError::BadStartLine, "{line:?}");
        }
    }

    #[test]
    fn err_bad_version() {
        assert_eq!(parse_err("INVITE sip:a@b.example SIP/3.0\r\n\r\n", Framing::Datagram), SipError::BadVersion);
        assert_eq!(parse_err("SIP/1.0 200 OK\r\n\r\n", Framing::Datagram), SipError::BadVersion);
        // The version compares case-insensitively (§7.1).
        assert!(Message::parse(b"sip/2.0 200 OK\r\n\r\n", Framing::Datagram).is_ok());
    }

    #[test]
    fn err_bad_method() {
        assert_eq!(parse_err("INV@ITE sip:a@b.example SIP/2.0\r\n\r\n", Framing::Datagram), SipError::BadMethod);
        assert_eq!(Method::parse(""), Err(SipError::BadMethod));
    }

    #[test]
    fn err_bad_status_code() {
        for line in ["SIP/2.0 2000 OK", "SIP/2.0 099 Low", "SIP/2.0 700 High", "SIP/2.0 OK"] {
            assert_eq!(parse_err(&format!("{line}\r\n\r\n"), Framing::Datagram), SipError::BadStatusCode, "{line}");
        }
    }

    #[test]
    fn err_bad_header_line() {
        assert_eq!(
            parse_err("SIP/2.0 200 OK\r\nno colon\r\n\r\n", Framing::Datagram),
            SipError::BadHeaderLine { line: 2 }
        );
        assert_eq!(
            parse_err("SIP/2.0 200 OK\r\n: empty\r\n\r\n", Framing::Datagram),
            SipError::BadHeaderLine { line: 2 }
        );
        assert_eq!(
            parse_err("SIP/2.0 200 OK\r\nA: 1\r\nBad Name: x\r\n\r\n", Framing::Datagram),
            SipError::BadHeaderLine { line: 3 }
        );
    }

    #[test]
    fn err_fold_without_header() {
        assert_eq!(
            parse_err("SIP/2.0 200 OK\r\n folded\r\n\r\n", Framing::Datagram),
            SipError::FoldWithoutHeader { line: 2 }
        );
    }

    #[test]
    fn err_control_character() {
        assert_eq!(
            parse_err("SIP/2.0 200 OK\r\nSubject: a\rb\r\n\r\n", Framing::Datagram),
            SipError::ControlCharacter { line: 2 }
        );
        assert_eq!(parse_err("SIP/2.0 200 O\x00K\r\n\r\n", Framing::Datagram), SipError::ControlCharacter { line: 1 });
    }

    #[test]
    fn err_not_utf8() {
        assert_eq!(
            Message::parse(b"SIP/2.0 200 OK\r\nSubject: caf\xe9\r\n\r\n", Framing::Datagram),
            Err(SipError::NotUtf8 { line: 2 })
        );
        // UTF-8 display names are fine.
        let ok = parse_udp("SIP/2.0 200 OK\r\nFrom: \"Jos\u{e9}\" <sip:jose@b.example>;tag=1\r\n\r\n");
        assert_eq!(ok.from().expect("From").display.as_deref(), Some("Jos\u{e9}"));
    }

    #[test]
    fn err_missing_header() {
        let bare = parse_udp("SIP/2.0 200 OK\r\n\r\n");
        assert_eq!(bare.call_id(), Err(SipError::MissingHeader { name: "Call-ID" }));
        assert_eq!(bare.cseq(), Err(SipError::MissingHeader { name: "CSeq" }));
        assert_eq!(bare.from(), Err(SipError::MissingHeader { name: "From" }));
        assert_eq!(bare.to(), Err(SipError::MissingHeader { name: "To" }));
        assert_eq!(bare.via(), Err(SipError::MissingHeader { name: "Via" }));
        assert_eq!(bare.top_via(), Err(SipError::MissingHeader { name: "Via" }));
        assert_eq!(bare.contact(), Ok(vec![]));
        assert_eq!(
            (bare.max_forwards(), bare.expires(), bare.session_expires(), bare.min_se()),
            (Ok(None), Ok(None), Ok(None), Ok(None))
        );
        let request = parse_udp("OPTIONS sip:a@b.example SIP/2.0\r\n\r\n");
        assert_eq!(Message::response(&request, 200, "OK", None), Err(SipError::MissingHeader { name: "Via" }));
        let request = parse_udp("OPTIONS sip:a@b.example SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n");
        assert_eq!(Message::response(&request, 200, "OK", None), Err(SipError::MissingHeader { name: "From" }));
    }

    #[test]
    fn err_bad_header_value() {
        let with = |header: &str| parse_udp(&format!("SIP/2.0 200 OK\r\n{header}\r\n\r\n"));
        fn bad<T>(name: &'static str, reason: &'static str) -> Result<T, SipError> {
            Err(SipError::BadHeaderValue { name, reason })
        }
        assert_eq!(with("Call-ID: a b").call_id(), bad("Call-ID", "empty or contains whitespace"));
        assert_eq!(with("CSeq: 1").cseq(), bad("CSeq", "not `number METHOD`"));
        assert_eq!(with("CSeq: x INVITE").cseq(), bad("CSeq", "not a decimal number"));
        assert_eq!(with("CSeq: 4294967296 INVITE").cseq(), bad("CSeq", "does not fit 32 bits"));
        assert_eq!(with("CSeq: 1 IN/VITE").cseq(), bad("CSeq", "the method is not a token"));
        assert_eq!(with("Max-Forwards: 256").max_forwards(), bad("Max-Forwards", "above 255"));
        assert_eq!(with("Expires: soon").expires(), bad("Expires", "not a decimal number"));
        assert_eq!(
            with("x: 90;refresher=both").session_expires(),
            bad("Session-Expires", "refresher is not uac or uas")
        );
        assert_eq!(with("x: 90 refresher").session_expires(), bad("Session-Expires", "not a decimal number"));
        assert_eq!(with("Allow: INVITE, B@D").allow(), bad("Allow", "not a method"));
        assert_eq!(with("Contact: *").contact(), bad("Contact", "the wildcard '*' is not an address"));
        assert_eq!(with("From: \"open <sip:a@b>").from(), bad("From", "an unterminated quoted display name"));
        assert_eq!(with("From: \"A\" sip:a@b").from(), bad("From", "a quoted display name is not followed by <URI>"));
        assert_eq!(with("To: A\" <sip:a@b>").to(), bad("To", "a malformed display name"));
        assert_eq!(with("To: <sip:a@b").to(), bad("To", "no '>' closes the URI"));
        assert_eq!(with("To: <sip:a@b> tag=1").to(), bad("To", "expected ';' before a parameter"));
        assert_eq!(with("To: <sip:a@b>;=1").to(), bad("To", "an empty parameter name"));
        assert_eq!(with("To: <sip:a@b>;tag=").to(), bad("To", "an empty parameter value"));
        assert_eq!(with("To: <sip:a@b>;tag=\"x").to(), bad("To", "an unterminated quoted parameter value"));
        assert_eq!(with("Via: SIP/2.0").via(), bad("Via", "no sent-protocol"));
        assert_eq!(with("Via: SIP/3.0/UDP h").via(), bad("Via", "the protocol is not SIP/2.0"));
        assert_eq!(with("Via: SIP/2.0/UDP").via(), bad("Via", "no sent-by"));
        assert_eq!(with("Via: SIP/2.0/U@P h").via(), bad("Via", "the transport is not a token"));
        assert_eq!(with("Via: SIP/2.0/UDP h:99999").via(), bad("Via", "a malformed sent-by"));
        assert_eq!(with("Via: SIP/2.0/UDP h;branch").top_via().map(|v| v.branch().is_none()), Ok(true));
    }

    #[test]
    fn err_bad_content_length_value() {
        assert_eq!(
            parse_err("SIP/2.0 200 OK\r\nContent-Length: 1x\r\n\r\n", Framing::Datagram),
            SipError::BadHeaderValue { name: "Content-Length", reason: "not a decimal number" }
        );
    }

    #[test]
    fn err_bad_uri() {
        let bad = |reason| Err(SipError::BadUri { reason });
        assert_eq!(Uri::parse("sip:a b@h"), bad("contains a space, a control, a non-ASCII octet or one of <>\""));
        assert_eq!(Uri::parse("alice@atlanta.com"), bad("no scheme"));
        assert_eq!(Uri::parse("http://a"), bad("the scheme is not sip, sips or tel"));
        assert_eq!(Uri::parse("tel:"), bad("a tel URI needs a number"));
        assert_eq!(Uri::parse("sip:@h"), bad("an empty user part before '@'"));
        assert_eq!(Uri::parse("sip:[::1"), bad("an IPv6 reference without ']'"));
        assert_eq!(Uri::parse("sip:[xyz]"), bad("a malformed IPv6 reference"));
        assert_eq!(Uri::parse("sip:[::1]x"), bad("text after the IPv6 reference"));
        assert_eq!(Uri::parse("sip:a@"), bad("a malformed host"));
        assert_eq!(Uri::parse("sip:a@h/x"), bad("a malformed host"));
        assert_eq!(Uri::parse("sip:h:70000"), bad("a port above 65535"));
        assert_eq!(Uri::parse("sip:h:5o60"), bad("a port that is not a number"));
        assert_eq!(Uri::parse("sip:h;;lr"), bad("an empty parameter name"));
        assert_eq!(Uri::parse("sip:h?subject"), bad("a URI header is not name=value"));
        // In a request line, an unsupported scheme fails the whole message.
        assert_eq!(
            parse_err("INVITE urn:service:sos SIP/2.0\r\n\r\n", Framing::Datagram),
            SipError::BadUri { reason: "the scheme is not sip, sips or tel" }
        );
    }

    #[test]
    fn err_not_a_phone_number() {
        assert_eq!(
            Uri::parse("sip:alice@h").expect("valid").phone_number(),
            Err(SipError::NotAPhoneNumber { source: E164Error::NotDigits })
        );
    }

    #[test]
    fn err_challenge() {
        let message = parse_udp(
            "SIP/2.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Digest nonce=\"n\"\r\nProxy-Authenticate: Bearer realm=\"x\"\r\n\r\n",
        );
        assert_eq!(message.proxy_authenticate(), Err(SipError::Challenge(DigestError::MissingParam { name: "realm" })));
        let other_scheme_only = parse_udp("SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\n\r\n");
        assert_eq!(other_scheme_only.www_authenticate(), Ok(vec![]));
    }

    use crate::test_rng::XorShift;

    /// Calls every accessor; none may panic, whatever they return.
    fn exercise(message: &Message) {
        let _ = (message.call_id(), message.cseq(), message.from(), message.to(), message.via(), message.top_via());
        let _ = (message.contact(), message.route(), message.record_route(), message.allow(), message.supported());
        let _ = (message.max_forwards(), message.expires(), message.session_expires(), message.min_se());
        let _ = (message.www_authenticate(), message.proxy_authenticate(), message.has_sdp(), message.require());
        if let Ok(from) = message.from() {
            let _ = from.uri.phone_number();
            assert_eq!(NameAddr::parse(&from.to_string()), Ok(from));
        }
        if let Ok(via) = message.via() {
            for v in via {
                assert_eq!(Via::parse(&v.to_string()), Ok(v));
            }
        }
        if message.is_request() {
            let _ = Message::response(message, 200, "OK", Some("t"));
            let _ = Message::cancel(message);
        }
    }

    #[test]
    fn pseudo_fuzz_never_panics_and_what_parses_round_trips() {
        const GOLDEN: [&str; 4] = [INVITE_GOLDEN, CHALLENGE_GOLDEN, RINGING_COMPACT, FOLDED];
        const SPICE: &[u8] = b"\r\n \t:;,<>\"\\@[]/=?&0123456789SIP/2.0 sip:tel:+Via: l: 10\xff\xc3";
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let (mut parsed, mut framed) = (0, 0);
        for i in 0..20_000 {
            let mut bytes: Vec<u8> = if i % 10 == 0 {
                (0..rng.below(300)).map(|_| SPICE[rng.below(SPICE.len())]).collect()
            } else {
                GOLDEN[rng.below(GOLDEN.len())].as_bytes().to_vec()
            };
            for _ in 0..=rng.below(6) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(4) {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, SPICE[rng.below(SPICE.len())]),
                    2 if at < bytes.len() => bytes[at] = rng.next() as u8,
                    _ => bytes.truncate(at.max(bytes.len() / 2)),
                }
            }
            if let Ok(Some(len)) = frame_len(&bytes) {
                framed += 1;
                assert!(len <= bytes.len());
                let _ = Message::parse(&bytes[..len], Framing::Stream);
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                if let Ok(uri) = Uri::parse(text.trim()) {
                    assert_eq!(Uri::parse(&uri.to_string()), Ok(uri));
                }
                let _ = normalize_e164(text);
            }
            for framing in [Framing::Datagram, Framing::Stream] {
                let Ok(message) = Message::parse(&bytes, framing) else { continue };
                parsed += 1;
                exercise(&message);
                let again = message.to_bytes();
                assert_eq!(
                    Message::parse(&again, Framing::Stream).as_ref(),
                    Ok(&message),
                    "{:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
        assert!(parsed > 5_000 && framed > 1_000, "parsed {parsed}, framed {framed}: the generator is too hostile");
    }
}

//! URIs and the structured header values built on them: [`Uri`] (`sip:`, `sips:`, `tel:`;
//! RFC 3261 §19.1, RFC 3966), [`NameAddr`] (From/To/Contact/Route, §20.10), [`Via`] (§20.42),
//! the `;name=value` [`Param`] and Session-Expires of RFC 4028; plus the quoting rules (§25.1).
//! Pure text in, values out.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use super::*;
use crate::e164::E164;

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

pub(super) fn write_params(f: &mut fmt::Formatter<'_>, params: &[Param]) -> fmt::Result {
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
pub(super) fn split_host_params(text: &str) -> (&str, Option<&str>) {
    let search_from = if text.starts_with('[') { text.find(']').unwrap_or(0) } else { 0 };
    match text[search_from..].find(';') {
        Some(i) => (&text[..search_from + i], Some(&text[search_from + i + 1..])),
        None => (text, None),
    }
}

/// `host[:port]`: a hostname, IPv4 address or `[IPv6]`, and a port that fits 16 bits.
pub(super) fn parse_host_port(text: &str) -> Result<(String, Option<u16>), &'static str> {
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

pub(super) fn parse_uri_params(text: &str) -> Result<Vec<Param>, SipError> {
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

pub(super) fn parse_name_addr(text: &str, header: &'static str) -> Result<NameAddr, SipError> {
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
pub(super) fn parse_header_params(text: &str, header: &'static str) -> Result<Vec<Param>, SipError> {
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

pub(super) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// The quoted-string at `start` (which holds `"`): its unescaped text and the index after the
/// closing quote.
pub(super) fn unquote(text: &str, start: usize) -> Option<(String, usize)> {
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

pub(super) fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in text.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        f.write_char(c)?;
    }
    f.write_str("\"")
}

//! Session descriptions (RFC 8866, the subset a SIP trunk uses) and the offer/answer rules of
//! RFC 3264 for one audio stream, pure: `&[u8]` in, a typed [`SessionDescription`] out, and back.
//!
//! Parsed: `v= o= s= c= b= t= m= a=`, with `i= u= e= p= r= z= k=` kept as opaque lines so that
//! nothing a peer sent is lost on the way through. Attributes the bridge acts on are typed
//! ([`Attribute`]): `rtpmap`, `fmtp`, `ptime`, `maxptime`, `rtcp` (RFC 3605) and the direction
//! flags (`sendrecv`, `sendonly`, `recvonly`, `inactive`); a malformed one of these is kept as
//! [`Attribute::Other`] rather than failing a whole offer over a codec we would not pick.
//! Writing puts the lines in RFC 8866 §5 order and what it writes parses to an equal value.
//!
//! [`answer`] picks, for the first usable `m=audio` stream, the first codec of *our* preference
//! list that the offer carries (G.722 first where the trunk allows it removes resampling), plus
//! RFC 4733 telephone-event, and rejects every other stream with port 0, keeping the m-line
//! count (RFC 3264 §6). [`offer`] and [`accept_answer`] are the other side of the exchange.
//!
//! What this module must not do: open sockets, pick ports or session ids (the caller passes its
//! [`LocalMedia`]), read a clock, or bump `o=` versions on its own.
//!
//! An offer line by line: `v=0`, `o=- 1700000000 1700000000 IN IP4 192.76.120.20`, `s=-`,
//! `c=IN IP4 192.76.120.20`, `t=0 0`, `m=audio 23456 RTP/AVP 0 8 101`, `a=rtpmap:101
//! telephone-event/8000`, `a=fmtp:101 0-16`, `a=ptime:20`, `a=sendrecv`.
//!
//! Size: about 960 lines of codec and 500 of tests. Parsing, writing and the offer/answer rules
//! share the typed description and its invariants (the m-line count, payload numbering), so they
//! stay in one file.

use std::fmt;
use std::net::IpAddr;

/// Longest description parsed: the SIP body limit.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// Most `m=` lines accepted; a trunk sends one, a softphone a handful.
pub const MAX_MEDIA: usize = 16;
/// The payload type we offer telephone-event on, as most carriers do.
pub const DEFAULT_TELEPHONE_EVENT_PT: u8 = 101;
/// The RFC 4733 events we send and understand: DTMF 0-9, `*`, `#`, A-D and flash (16).
pub const SUPPORTED_EVENTS: std::ops::RangeInclusive<u8> = 0..=16;
/// The RTP clock of telephone-event and of every codec here.
pub const RTP_CLOCK_RATE_HZ: u32 = 8000;

const TELEPHONE_EVENT: &str = "telephone-event";
/// What RFC 4733 §2.4.1 says an offer without `fmtp` supports.
const DEFAULT_EVENTS: std::ops::RangeInclusive<u8> = 0..=15;

/// Why a description could not be parsed or an exchange concluded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("a {len}-octet description exceeds the limit of {MAX_SDP_LEN}")]
    TooLong { len: usize },
    #[error("the description is not UTF-8")]
    NotUtf8,
    #[error("line {line} contains a control character")]
    ControlCharacter { line: usize },
    #[error("line {line} is not `<letter>=<value>`")]
    BadLine { line: usize },
    #[error("line {line} has the unknown type {letter:?}")]
    UnknownType { line: usize, letter: char },
    #[error("the description does not start with v=0")]
    BadVersion,
    #[error("the required {letter}= line is missing")]
    MissingLine { letter: char },
    #[error("line {line}: {letter}= is repeated or not allowed here")]
    Unexpected { line: usize, letter: char },
    #[error("line {line}: malformed o= line")]
    BadOrigin { line: usize },
    #[error("line {line}: malformed c= line")]
    BadConnection { line: usize },
    #[error("line {line}: malformed t= line")]
    BadTiming { line: usize },
    #[error("line {line}: malformed m= line")]
    BadMedia { line: usize },
    #[error("{count} media descriptions exceed the limit of {MAX_MEDIA}")]
    TooManyMedia { count: usize },
    #[error("no audio stream carries a codec we support")]
    NoCommonCodec,
    #[error("cannot send {what}")]
    Unsendable { what: &'static str },
}

/// `IP4` or `IP6`, the only address types a trunk uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrType {
    Ip4,
    Ip6,
}

impl AddrType {
    fn parse(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("IP4") {
            Some(Self::Ip4)
        } else if token.eq_ignore_ascii_case("IP6") {
            Some(Self::Ip6)
        } else {
            None
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Ip4 => "IP4",
            Self::Ip6 => "IP6",
        }
    }
}

/// `o=<username> <sess-id> <sess-version> IN <addrtype> <address>`. The id and version are
/// kept as text: they only need comparing, and some stacks send more digits than `u64` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    /// Bumped by the sender each time the description changes (RFC 3264 §8).
    pub session_version: String,
    pub addr_type: AddrType,
    pub address: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { username, session_id, session_version, addr_type, address } = self;
        write!(f, "{username} {session_id} {session_version} IN {} {address}", addr_type.as_str())
    }
}

/// `c=IN IP4 192.0.2.10`. The address may be a name or carry a multicast `/ttl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub addr_type: AddrType,
    pub address: String,
}

impl Connection {
    pub fn new(ip: IpAddr) -> Self {
        let addr_type = if ip.is_ipv4() { AddrType::Ip4 } else { AddrType::Ip6 };
        Self { addr_type, address: ip.to_string() }
    }

    /// The address as an IP, when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// `c=IN IP4 0.0.0.0`: the RFC 2543 way of putting a call on hold (RFC 3264 §8.4).
    pub fn is_hold(&self) -> bool {
        self.address == "0.0.0.0"
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.addr_type.as_str(), self.address)
    }
}

/// `t=<start> <stop>`, NTP seconds; `t=0 0` is an unbounded session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub start: u64,
    pub stop: u64,
}

/// Which way media flows, from the point of view of whoever wrote the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Self::SendRecv,
            (true, false) => Self::SendOnly,
            (false, true) => Self::RecvOnly,
            (false, false) => Self::Inactive,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    /// The same flow seen from the other end.
    pub fn reversed(self) -> Self {
        Self::from_flags(self.receives(), self.sends())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::SendRecv, Self::SendOnly, Self::RecvOnly, Self::Inactive].into_iter().find(|d| d.as_str() == name)
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`, e.g. `9 G722/8000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    /// The RTP timestamp clock, which for G.722 is 8000 although it samples at 16 kHz.
    pub clock_rate_hz: u32,
    pub channels: Option<u8>,
}

impl RtpMap {
    fn parse(value: &str) -> Option<Self> {
        let (pt, rest) = value.split_once(' ')?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().filter(|e| !e.is_empty() && !e.contains(char::is_whitespace))?;
        let clock_rate_hz = parse_decimal(parts.next()?)?;
        let channels = parts.next().map(parse_decimal).map(|c| c.and_then(|c| u8::try_from(c).ok()));
        if parts.next().is_some() || channels == Some(None) {
            return None;
        }
        Some(Self {
            payload_type: parse_payload_type(pt)?,
            encoding: encoding.to_owned(),
            clock_rate_hz,
            channels: channels.flatten(),
        })
    }

    /// The RFC 3551 §6 mapping of a static payload type, for an m-line without `rtpmap`.
    pub fn for_static(payload_type: u8) -> Option<Self> {
        let (encoding, clock_rate_hz) = match payload_type {
            0 => ("PCMU", 8000),
            3 => ("GSM", 8000),
            4 => ("G723", 8000),
            8 => ("PCMA", 8000),
            9 => ("G722", 8000),
            13 => ("CN", 8000),
            18 => ("G729", 8000),
            _ => return None,
        };
        Some(Self { payload_type, encoding: encoding.to_owned(), clock_rate_hz, channels: None })
    }

    fn is_mono(&self) -> bool {
        self.channels.is_none_or(|c| c == 1)
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.payload_type, self.encoding, self.clock_rate_hz)?;
        if let Some(channels) = self.channels {
            write!(f, "/{channels}")?;
        }
        Ok(())
    }
}

/// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    pub port: u16,
    pub connection: Option<Connection>,
}

impl Rtcp {
    fn parse(value: &str) -> Option<Self> {
        let tokens: Vec<&str> = value.split_ascii_whitespace().collect();
        let port = parse_decimal(tokens.first()?).and_then(|p| u16::try_from(p).ok())?;
        let connection = match tokens.len() {
            1 => None,
            4 => Some(parse_connection(&tokens[1..])?),
            _ => return None,
        };
        Some(Self { port, connection })
    }
}

/// One `a=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    RtpMap(RtpMap),
    /// `a=fmtp:101 0-16`: format-specific parameters, kept as text.
    Fmtp {
        format: String,
        params: String,
    },
    /// `a=ptime:20`, milliseconds of audio per packet.
    Ptime(u32),
    MaxPtime(u32),
    Direction(Direction),
    Rtcp(Rtcp),
    /// Anything else, or one of the above that did not parse, as sent.
    Other {
        name: String,
        value: Option<String>,
    },
}

impl Attribute {
    fn parse(text: &str) -> Self {
        let (name, value) = text.split_once(':').map_or((text, None), |(n, v)| (n, Some(v)));
        let typed = match (name, value) {
            ("rtpmap", Some(value)) => RtpMap::parse(value).map(Self::RtpMap),
            ("fmtp", Some(value)) => {
                let (format, params) = value.split_once(' ').unwrap_or((value, ""));
                (!format.is_empty()).then(|| Self::Fmtp { format: format.to_owned(), params: params.to_owned() })
            }
            ("ptime", Some(value)) => parse_decimal(value).map(Self::Ptime),
            ("maxptime", Some(value)) => parse_decimal(value).map(Self::MaxPtime),
            ("rtcp", Some(value)) => Rtcp::parse(value).map(Self::Rtcp),
            (name, None) => Direction::parse(name).map(Self::Direction),
            _ => None,
        };
        typed.unwrap_or_else(|| Self::Other { name: name.to_owned(), value: value.map(str::to_owned) })
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RtpMap(map) => write!(f, "rtpmap:{map}"),
            Self::Fmtp { format, params } if params.is_empty() => write!(f, "fmtp:{format}"),
            Self::Fmtp { format, params } => write!(f, "fmtp:{format} {params}"),
            Self::Ptime(ms) => write!(f, "ptime:{ms}"),
            Self::MaxPtime(ms) => write!(f, "maxptime:{ms}"),
            Self::Direction(direction) => f.write_str(direction.as_str()),
            Self::Rtcp(Rtcp { port, connection: None }) => write!(f, "rtcp:{port}"),
            Self::Rtcp(Rtcp { port, connection: Some(c) }) => write!(f, "rtcp:{port} {c}"),
            Self::Other { name, value: None } => f.write_str(name),
            Self::Other { name, value: Some(value) } => write!(f, "{name}:{value}"),
        }
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `application`, …
    pub kind: String,
    /// 0 rejects or disables the stream (RFC 3264 §5.1, §6).
    pub port: u16,
    /// `m=audio 49170/2 …`: consecutive port pairs; trunks never send it.
    pub port_count: Option<u16>,
    /// `RTP/AVP` for plain RTP; `RTP/SAVP` needs SRTP.
    pub proto: String,
    /// For RTP, payload type numbers as text, in the sender's order of preference.
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    /// `b=` values as sent (`AS:64`).
    pub bandwidths: Vec<String>,
    pub attributes: Vec<Attribute>,
    /// `i=` and `k=` lines as sent, in that order.
    pub extra: Vec<(char, String)>,
}

impl Media {
    /// The payload types of the formats that are numbers from 0 to 127, in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| parse_payload_type(f))
    }

    /// The `rtpmap` of a payload type, or the static RFC 3551 mapping when there is none.
    pub fn rtpmap(&self, payload_type: u8) -> Option<RtpMap> {
        self.attributes
            .iter()
            .find_map(|a| match a {
                Attribute::RtpMap(map) if map.payload_type == payload_type => Some(map.clone()),
                _ => None,
            })
            .or_else(|| RtpMap::for_static(payload_type))
    }

    /// The `fmtp` parameters of a format.
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp { format, params } if parse_payload_type(format) == Some(payload_type) => {
                Some(params.as_str())
            }
            _ => None,
        })
    }

    pub fn ptime_ms(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Ptime(ms) => Some(*ms),
            _ => None,
        })
    }

    /// The stream's own direction attribute, if it has one.
    pub fn direction(&self) -> Option<Direction> {
        find_direction(&self.attributes)
    }

    pub fn rtcp(&self) -> Option<&Rtcp> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtcp(rtcp) => Some(rtcp),
            _ => None,
        })
    }

    /// The payload type this stream carries telephone-event on, if any.
    pub fn telephone_event(&self) -> Option<u8> {
        self.payload_types().find(|&pt| self.rtpmap(pt).is_some_and(|m| is_telephone_event(&m)))
    }

    fn is_rtp_audio(&self) -> bool {
        self.kind.eq_ignore_ascii_case("audio") && self.proto.eq_ignore_ascii_case("RTP/AVP")
    }
}

fn find_direction(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| match a {
        Attribute::Direction(direction) => Some(*direction),
        _ => None,
    })
}

fn is_telephone_event(map: &RtpMap) -> bool {
    map.encoding.eq_ignore_ascii_case(TELEPHONE_EVENT) && map.clock_rate_hz == RTP_CLOCK_RATE_HZ
}

/// A whole description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    /// `s=`; `-` or a single space when the session has no name.
    pub session_name: String,
    pub connection: Option<Connection>,
    pub bandwidths: Vec<String>,
    pub timing: Vec<Timing>,
    /// Session-level attributes; a direction here applies to every stream without its own.
    pub attributes: Vec<Attribute>,
    pub media: Vec<Media>,
    /// `i= u= e= p= r= z= k=` lines as sent, in RFC 8866 order.
    pub extra: Vec<(char, String)>,
}

impl SessionDescription {
    pub fn parse(bytes: &[u8]) -> Result<Self, SdpError> {
        if bytes.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLong { len: bytes.len() });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| SdpError::NotUtf8)?;
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line)))
            .filter(|(_, line)| !line.is_empty());
        if lines.next().map(|(_, line)| line) != Some("v=0") {
            return Err(SdpError::BadVersion);
        }
        let (mut origin, mut session_name, mut connection) = (None, None, None);
        let (mut bandwidths, mut timing, mut attributes, mut extra) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut media: Vec<Media> = Vec::new();

        for (line, text) in lines {
            if text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7F) {
                return Err(SdpError::ControlCharacter { line });
            }
            let (letter, value) = match text.as_bytes() {
                [letter @ b'a'..=b'z', b'=', ..] => (char::from(*letter), &text[2..]),
                _ => return Err(SdpError::BadLine { line }),
            };
            let unexpected = SdpError::Unexpected { line, letter };
            if let Some(current) = media.last_mut() {
                match letter {
                    'm' => {}
                    'c' if current.connection.is_some() => return Err(unexpected),
                    'c' => current.connection = Some(parse_connection_line(value, line)?),
                    'b' => current.bandwidths.push(value.to_owned()),
                    'a' => current.attributes.push(Attribute::parse(value)),
                    'i' | 'k' => insert_extra(&mut current.extra, "ik", letter, value),
                    'v' | 'o' | 's' | 't' | 'u' | 'e' | 'p' | 'r' | 'z' => return Err(unexpected),
                    _ => return Err(SdpError::UnknownType { line, letter }),
                }
            } else {
                match letter {
                    'm' => {}
                    'o' if origin.is_some() => return Err(unexpected),
                    'o' => origin = Some(parse_origin(value).ok_or(SdpError::BadOrigin { line })?),
                    's' if session_name.is_some() => return Err(unexpected),
                    's' => session_name = Some(value.to_owned()),
                    'c' if connection.is_some() => return Err(unexpected),
                    'c' => connection = Some(parse_connection_line(value, line)?),
                    'b' => bandwidths.push(value.to_owned()),
                    't' => timing.push(parse_timing(value).ok_or(SdpError::BadTiming { line })?),
                    'a' => attributes.push(Attribute::parse(value)),
                    'i' | 'u' | 'e' | 'p' | 'r' | 'z' | 'k' => insert_extra(&mut extra, "iueprzk", letter, value),
                    'v' => return Err(unexpected),
                    _ => return Err(SdpError::UnknownType { line, letter }),
                }
            }
            if letter == 'm' {
                if media.len() == MAX_MEDIA {
                    return Err(SdpError::TooManyMedia { count: MAX_MEDIA + 1 });
                }
                media.push(parse_media(value).ok_or(SdpError::BadMedia { line })?);
            }
        }
        Ok(Self {
            origin: origin.ok_or(SdpError::MissingLine { letter: 'o' })?,
            session_name: session_name.ok_or(SdpError::MissingLine { letter: 's' })?,
            connection,
            bandwidths,
            timing,
            attributes,
            media,
            extra,
        })
    }

    /// The description as sent, CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The direction of stream `media`: its own attribute, else the session's, else sendrecv.
    pub fn direction_of(&self, media: &Media) -> Direction {
        media.direction().or_else(|| find_direction(&self.attributes)).unwrap_or(Direction::SendRecv)
    }

    /// The connection of stream `media`: its own `c=`, else the session's.
    pub fn connection_of<'a>(&'a self, media: &'a Media) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// Whether the writer of this description puts the first active audio stream on hold:
    /// `sendonly` or `inactive`, or the legacy `c=0.0.0.0` (RFC 3264 §8.4).
    pub fn is_hold(&self) -> bool {
        self.media
            .iter()
            .find(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)
            .is_some_and(|m| !self.effective_direction(m).receives())
    }

    /// The direction, with `c=0.0.0.0` read as "do not send to me".
    fn effective_direction(&self, media: &Media) -> Direction {
        let direction = self.direction_of(media);
        if self.connection_of(media).is_some_and(Connection::is_hold) {
            Direction::from_flags(direction.sends(), false)
        } else {
            direction
        }
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\no={}\r\ns={}\r\n", self.origin, self.session_name)?;
        write_extra(f, &self.extra, "iuep")?;
        if let Some(connection) = &self.connection {
            write!(f, "c={connection}\r\n")?;
        }
        for bandwidth in &self.bandwidths {
            write!(f, "b={bandwidth}\r\n")?;
        }
        for Timing { start, stop } in &self.timing {
            write!(f, "t={start} {stop}\r\n")?;
        }
        write_extra(f, &self.extra, "rzk")?;
        for attribute in &self.attributes {
            write!(f, "a={attribute}\r\n")?;
        }
        for media in &self.media {
            write!(f, "m={} {}", media.kind, media.port)?;
            if let Some(count) = media.port_count {
                write!(f, "/{count}")?;
            }
            write!(f, " {}", media.proto)?;
            for format in &media.formats {
                write!(f, " {format}")?;
            }
            f.write_str("\r\n")?;
            write_extra(f, &media.extra, "i")?;
            if let Some(connection) = &media.connection {
                write!(f, "c={connection}\r\n")?;
            }
            for bandwidth in &media.bandwidths {
                write!(f, "b={bandwidth}\r\n")?;
            }
            write_extra(f, &media.extra, "k")?;
            for attribute in &media.attributes {
                write!(f, "a={attribute}\r\n")?;
            }
        }
        Ok(())
    }
}

/// Keeps opaque lines sorted by their RFC 8866 position (`order`), arrival order within a letter,
/// so that writing them in that order and parsing again gives the same list.
fn insert_extra(extra: &mut Vec<(char, String)>, order: &str, letter: char, value: &str) {
    let rank = |c: char| order.find(c).unwrap_or(order.len());
    let at = extra.iter().position(|(l, _)| rank(*l) > rank(letter)).unwrap_or(extra.len());
    extra.insert(at, (letter, value.to_owned()));
}

fn write_extra(f: &mut fmt::Formatter<'_>, extra: &[(char, String)], letters: &str) -> fmt::Result {
    extra.iter().filter(|(l, _)| letters.contains(*l)).try_for_each(|(l, v)| write!(f, "{l}={v}\r\n"))
}

/// Up to nine decimal digits: every count and rate here fits `u32` with room.
fn parse_decimal(text: &str) -> Option<u32> {
    (!text.is_empty() && text.len() <= 9 && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok())?
}

fn parse_payload_type(text: &str) -> Option<u8> {
    parse_decimal(text).and_then(|pt| u8::try_from(pt).ok()).filter(|&pt| pt <= 127)
}

fn parse_origin(value: &str) -> Option<Origin> {
    let tokens: Vec<&str> = value.split_ascii_whitespace().collect();
    let [username, session_id, session_version, net_type, addr_type, address] = tokens[..] else {
        return None;
    };
    if !net_type.eq_ignore_ascii_case("IN") {
        return None;
    }
    Some(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        session_version: session_version.to_owned(),
        addr_type: AddrType::parse(addr_type)?,
        address: address.to_owned(),
    })
}

fn parse_connection(tokens: &[&str]) -> Option<Connection> {
    let [net_type, addr_type, address] = tokens else {
        return None;
    };
    if !net_type.eq_ignore_ascii_case("IN") {
        return None;
    }
    Some(Connection { addr_type: AddrType::parse(addr_type)?, address: (*address).to_owned() })
}

fn parse_connection_line(value: &str, line: usize) -> Result<Connection, SdpError> {
    let tokens: Vec<&str> = value.split_ascii_whitespace().collect();
    parse_connection(&tokens).ok_or(SdpError::BadConnection { line })
}

fn parse_timing(value: &str) -> Option<Timing> {
    let mut tokens = value.split_ascii_whitespace();
    let mut number = || tokens.next().filter(|t| t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit()))?.parse().ok();
    let timing = Timing { start: number()?, stop: number()? };
    tokens.next().is_none().then_some(timing)
}

fn parse_media(value: &str) -> Option<Media> {
    let mut tokens = value.split_ascii_whitespace();
    let kind = tokens.next()?;
    let port = tokens.next()?;
    let proto = tokens.next()?;
    let to_port = |text: &str| parse_decimal(text).and_then(|p| u16::try_from(p).ok());
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (to_port(port)?, Some(to_port(count)?)),
        None => (to_port(port)?, None),
    };
    Some(Media {
        kind: kind.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats: tokens.map(str::to_owned).collect(),
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        extra: Vec::new(),
    })
}

/// An audio codec the bridge speaks: one type for SDP, the network leg and the media pipeline.
pub use crate::media::Codec;

/// What SDP needs of a [`Codec`] beyond its names and numbers: matching and writing `a=rtpmap`.
trait CodecRtpMap {
    fn matches(self, map: &RtpMap) -> bool;
    fn rtpmap(self, payload_type: u8) -> RtpMap;
}

impl CodecRtpMap for Codec {
    fn matches(self, map: &RtpMap) -> bool {
        map.encoding.eq_ignore_ascii_case(self.encoding_name())
            && map.clock_rate_hz == RTP_CLOCK_RATE_HZ
            && map.is_mono()
    }

    fn rtpmap(self, payload_type: u8) -> RtpMap {
        RtpMap {
            payload_type,
            encoding: self.encoding_name().to_owned(),
            clock_rate_hz: RTP_CLOCK_RATE_HZ,
            channels: None,
        }
    }
}

/// Our side of the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Ours; the caller keeps the session id and bumps the version when the description changes.
    pub origin: Origin,
    pub session_name: String,
    /// Where we receive RTP (the public address behind 1:1 NAT).
    pub connection: Connection,
    pub port: u16,
    /// In our order of preference; never empty.
    pub codecs: Vec<Codec>,
    /// The PT to offer telephone-event on; `None` to neither offer nor accept it.
    pub telephone_event_pt: Option<u8>,
    pub ptime_ms: u32,
    /// What we want: `SendRecv`, or `SendOnly` to put the peer on hold.
    pub direction: Direction,
}

/// What an offer/answer exchange settled for the audio stream, from our point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Which m-line of the description carries it.
    pub media_index: usize,
    pub codec: Codec,
    pub payload_type: u8,
    pub telephone_event_pt: Option<u8>,
    /// Where to send RTP: the stream's or the session's `c=`, and its port.
    pub remote_connection: Option<Connection>,
    pub remote_port: u16,
    pub remote_rtcp: Option<Rtcp>,
    pub remote_ptime_ms: Option<u32>,
    /// Whether we may send and whether we will receive.
    pub direction: Direction,
    /// The peer put us on hold: it will not receive (sendonly, inactive or `c=0.0.0.0`).
    pub remote_hold: bool,
}

fn check_local(local: &LocalMedia) -> Result<(), SdpError> {
    let Origin { username, session_id, session_version, address, .. } = &local.origin;
    let tokens = [username, session_id, session_version, address, &local.connection.address];
    if tokens.iter().any(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(SdpError::Unsendable { what: "an o= or c= field that is empty or not a visible ASCII token" });
    }
    if local.session_name.bytes().any(|b| b < 0x20 || b == 0x7F) {
        return Err(SdpError::Unsendable { what: "a session name with a control character" });
    }
    if local.codecs.is_empty() {
        return Err(SdpError::Unsendable { what: "an audio stream without codecs" });
    }
    if local.telephone_event_pt.is_some_and(|pt| pt > 127) {
        return Err(SdpError::Unsendable { what: "a payload type above 127" });
    }
    Ok(())
}

fn session(local: &LocalMedia, timing: Vec<Timing>, media: Vec<Media>) -> SessionDescription {
    SessionDescription {
        origin: local.origin.clone(),
        session_name: local.session_name.clone(),
        connection: Some(local.connection.clone()),
        bandwidths: Vec::new(),
        timing,
        attributes: Vec::new(),
        media,
        extra: Vec::new(),
    }
}

fn events_fmtp(events: &[bool; 256]) -> String {
    let mut out = String::new();
    let mut i = 0usize;
    while i < events.len() {
        if !events[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < events.len() && events[i + 1] {
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&if start == i { start.to_string() } else { format!("{start}-{i}") });
        i += 1;
    }
    out
}

/// `0-15,66,70` → the set of events; `None` when malformed.
fn parse_events(params: &str) -> Option<[bool; 256]> {
    let mut events = [false; 256];
    for item in params.split(',').map(str::trim) {
        let (low, high) = item.split_once('-').unwrap_or((item, item));
        let event = |t: &str| parse_decimal(t.trim()).and_then(|e| u8::try_from(e).ok());
        let (low, high) = (event(low)?, event(high)?);
        for e in low..=high {
            events[usize::from(e)] = true;
        }
    }
    Some(events)
}

fn supported_events() -> [bool; 256] {
    let mut events = [false; 256];
    for e in SUPPORTED_EVENTS {
        events[usize::from(e)] = true;
    }
    events
}

/// Our offer: one `m=audio` with our codecs in order, telephone-event, ptime and direction.
pub fn offer(local: &LocalMedia) -> Result<SessionDescription, SdpError> {
    check_local(local)?;
    let mut formats: Vec<String> = local.codecs.iter().map(|c| c.static_payload_type().to_string()).collect();
    let mut attributes: Vec<Attribute> =
        local.codecs.iter().map(|c| Attribute::RtpMap(c.rtpmap(c.static_payload_type()))).collect();
    if let Some(pt) = local.telephone_event_pt {
        formats.push(pt.to_string());
        attributes.push(Attribute::RtpMap(telephone_event_rtpmap(pt)));
        attributes.push(Attribute::Fmtp { format: pt.to_string(), params: events_fmtp(&supported_events()) });
    }
    attributes.push(Attribute::Ptime(local.ptime_ms));
    attributes.push(Attribute::Direction(local.direction));
    let media = audio_media(local.port, "RTP/AVP", formats, attributes);
    Ok(session(local, vec![Timing { start: 0, stop: 0 }], vec![media]))
}

fn telephone_event_rtpmap(payload_type: u8) -> RtpMap {
    RtpMap { payload_type, encoding: TELEPHONE_EVENT.to_owned(), clock_rate_hz: RTP_CLOCK_RATE_HZ, channels: None }
}

fn audio_media(port: u16, proto: &str, formats: Vec<String>, attributes: Vec<Attribute>) -> Media {
    Media {
        kind: "audio".to_owned(),
        port,
        port_count: None,
        proto: proto.to_owned(),
        formats,
        connection: None,
        bandwidths: Vec::new(),
        attributes,
        extra: Vec::new(),
    }
}

/// The first payload type of `media`, in its order, that carries one of `codecs`, taking the
/// codecs in the order given.
fn choose_codec(media: &Media, codecs: &[Codec]) -> Option<(Codec, u8)> {
    codecs.iter().find_map(|&codec| {
        media.payload_types().find(|&pt| media.rtpmap(pt).is_some_and(|m| codec.matches(&m))).map(|pt| (codec, pt))
    })
}

/// Our answer to `offer` (RFC 3264 §6): the first `m=audio RTP/AVP` stream with a port and a
/// codec we support is accepted with the first of `local.codecs` it offers (our preference),
/// plus telephone-event when both sides have it; every other stream is rejected with port 0,
/// so the answer has as many m-lines as the offer. `t=` is copied from the offer.
pub fn answer(offer: &SessionDescription, local: &LocalMedia) -> Result<(SessionDescription, Negotiated), SdpError> {
    check_local(local)?;
    let mut negotiated = None;
    let mut media = Vec::with_capacity(offer.media.len());
    for (index, offered) in offer.media.iter().enumerate() {
        let chosen = (negotiated.is_none() && offered.port != 0 && offered.is_rtp_audio())
            .then(|| choose_codec(offered, &local.codecs))
            .flatten();
        let Some((codec, payload_type)) = chosen else {
            media.push(Media {
                port: 0,
                port_count: None,
                connection: None,
                bandwidths: Vec::new(),
                attributes: Vec::new(),
                extra: Vec::new(),
                ..offered.clone()
            });
            continue;
        };
        let mut formats = vec![payload_type.to_string()];
        let mut attributes = vec![Attribute::RtpMap(codec.rtpmap(payload_type))];
        let telephone_event = local.telephone_event_pt.and(offered.telephone_event()).and_then(|pt| {
            let offered_events = match offered.fmtp(pt) {
                Some(params) => parse_events(params)?,
                None => {
                    let mut events = [false; 256];
                    DEFAULT_EVENTS.for_each(|e| events[usize::from(e)] = true);
                    events
                }
            };
            let supported = supported_events();
            let mut common = [false; 256];
            for (c, (o, s)) in common.iter_mut().zip(offered_events.iter().zip(supported.iter())) {
                *c = *o && *s;
            }
            common.contains(&true).then(|| (pt, events_fmtp(&common)))
        });
        if let Some((pt, events)) = &telephone_event {
            formats.push(pt.to_string());
            attributes.push(Attribute::RtpMap(telephone_event_rtpmap(*pt)));
            attributes.push(Attribute::Fmtp { format: pt.to_string(), params: events.clone() });
        }
        attributes.push(Attribute::Ptime(local.ptime_ms));
        let offered_direction = offer.effective_direction(offered);
        // We may send what they receive, and receive what they send, within what we want.
        let direction = Direction::from_flags(
            offered_direction.receives() && local.direction.sends(),
            offered_direction.sends() && local.direction.receives(),
        );
        attributes.push(Attribute::Direction(direction));
        media.push(audio_media(local.port, &offered.proto, formats, attributes));
        negotiated = Some(Negotiated {
            media_index: index,
            codec,
            payload_type,
            telephone_event_pt: telephone_event.map(|(pt, _)| pt),
            remote_connection: offer.connection_of(offered).cloned(),
            remote_port: offered.port,
            remote_rtcp: offered.rtcp().cloned(),
            remote_ptime_ms: offered.ptime_ms(),
            direction,
            remote_hold: !offered_direction.receives(),
        });
    }
    let negotiated = negotiated.ok_or(SdpError::NoCommonCodec)?;
    let timing = if offer.timing.is_empty() { vec![Timing { start: 0, stop: 0 }] } else { offer.timing.clone() };
    Ok((session(local, timing, media), negotiated))
}

/// Reads the peer's answer to our offer: the first accepted `m=audio` stream, the first of its
/// formats that is one of our codecs (the answerer's choice), and its telephone-event.
pub fn accept_answer(answer: &SessionDescription, local: &LocalMedia) -> Result<Negotiated, SdpError> {
    let (index, media) = answer
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| m.port != 0 && m.is_rtp_audio())
        .ok_or(SdpError::NoCommonCodec)?;
    let (codec, payload_type) = media
        .payload_types()
        .find_map(|pt| {
            let map = media.rtpmap(pt)?;
            local.codecs.iter().find(|c| c.matches(&map)).map(|&c| (c, pt))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let answered = answer.effective_direction(media);
    Ok(Negotiated {
        media_index: index,
        codec,
        payload_type,
        telephone_event_pt: local.telephone_event_pt.and(media.telephone_event()),
        remote_connection: answer.connection_of(media).cloned(),
        remote_port: media.port,
        remote_rtcp: media.rtcp().cloned(),
        remote_ptime_ms: media.ptime_ms(),
        direction: Direction::from_flags(
            answered.receives() && local.direction.sends(),
            answered.sends() && local.direction.receives(),
        ),
        remote_hold: !answered.receives(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An early offer as a trunk sends it on an inbound INVITE.
    const TRUNK_OFFER: &str = "v=0\r\n\
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

    /// G.711 only, static payload types without rtpmap, telephone-event on 96, the events list
    /// split, a bandwidth line and info lines; LF line ends.
    const SPARSE_OFFER: &str = "v=0\n\
        o=root 2014 2015 IN IP4 203.0.113.5\n\
        s=Twilio Media Gateway\n\
        i=session info\n\
        c=IN IP4 203.0.113.5\n\
        b=AS:84\n\
        t=0 0\n\
        m=audio 10000 RTP/AVP 8 0 96\n\
        i=media info\n\
        a=rtpmap:96 telephone-event/8000\n\
        a=fmtp:96 0-11,16,32\n\
        a=maxptime:150\n";

    /// A softphone-style offer: video first, SRTP audio, then plain audio with its own c=,
    /// session-level sendonly (hold), an IPv6 origin.
    const MULTI_OFFER: &str = "v=0\r\n\
        o=alice 53655765 2353687637 IN IP6 2001:db8::1\r\n\
        s= \r\n\
        t=0 0\r\n\
        a=sendonly\r\n\
        m=video 51372 RTP/AVP 96\r\n\
        a=rtpmap:96 H264/90000\r\n\
        m=audio 49170 RTP/SAVP 0\r\n\
        c=IN IP4 192.0.2.10\r\n\
        m=audio 49180 RTP/AVP 18 8\r\n\
        c=IN IP4 192.0.2.11\r\n\
        a=rtcp:53020 IN IP4 192.0.2.12\r\n";

    fn local() -> LocalMedia {
        LocalMedia {
            origin: Origin {
                username: "agentline".to_owned(),
                session_id: "4242".to_owned(),
                session_version: "1".to_owned(),
                addr_type: AddrType::Ip4,
                address: "198.51.100.7".to_owned(),
            },
            session_name: "agentline".to_owned(),
            connection: Connection::new("198.51.100.7".parse().expect("literal")),
            port: 40000,
            codecs: vec![Codec::G722, Codec::Pcmu, Codec::Pcma],
            telephone_event_pt: Some(DEFAULT_TELEPHONE_EVENT_PT),
            ptime_ms: 20,
            direction: Direction::SendRecv,
        }
    }

    fn parse(text: &str) -> SessionDescription {
        SessionDescription::parse(text.as_bytes()).expect("golden description parses")
    }

    fn assert_round_trip(sdp: &SessionDescription) {
        assert_eq!(SessionDescription::parse(&sdp.to_bytes()).as_ref(), Ok(sdp));
    }

    #[test]
    fn golden_trunk_offer() {
        let sdp = parse(TRUNK_OFFER);
        assert_eq!(sdp.origin.address, "192.76.120.20");
        assert_eq!(sdp.session_name, "Telnyx");
        assert_eq!(sdp.connection.as_ref().and_then(Connection::ip), Some("192.76.120.20".parse().expect("literal")));
        assert_eq!(sdp.timing, [Timing { start: 0, stop: 0 }]);
        let audio = &sdp.media[0];
        assert_eq!((audio.kind.as_str(), audio.port, audio.proto.as_str()), ("audio", 23456, "RTP/AVP"));
        assert_eq!(audio.payload_types().collect::<Vec<_>>(), [0, 8, 9, 101]);
        let g722 = audio.rtpmap(9).expect("G722 mapped");
        assert_eq!((g722.encoding.as_str(), g722.clock_rate_hz), ("G722", 8000), "G.722's RTP clock is 8000");
        assert_eq!(audio.telephone_event(), Some(101));
        assert_eq!(audio.fmtp(101), Some("0-16"));
        assert_eq!((audio.ptime_ms(), audio.direction()), (Some(20), Some(Direction::SendRecv)));
        assert_eq!(audio.rtcp(), Some(&Rtcp { port: 23457, connection: None }));
        assert!(!sdp.is_hold());
        assert_eq!(String::from_utf8(sdp.to_bytes()).expect("UTF-8"), TRUNK_OFFER, "canonical input is reproduced");
    }

    #[test]
    fn answers_the_trunk_offer_with_our_first_codec() {
        let (answer, negotiated) = answer(&parse(TRUNK_OFFER), &local()).expect("common codec");
        let expected = "v=0\r\n\
            o=agentline 4242 1 IN IP4 198.51.100.7\r\n\
            s=agentline\r\n\
            c=IN IP4 198.51.100.7\r\n\
            t=0 0\r\n\
            m=audio 40000 RTP/AVP 9 101\r\n\
            a=rtpmap:9 G722/8000\r\n\
            a=rtpmap:101 telephone-event/8000\r\n\
            a=fmtp:101 0-16\r\n\
            a=ptime:20\r\n\
            a=sendrecv\r\n";
        assert_eq!(String::from_utf8(answer.to_bytes()).expect("UTF-8"), expected);
        assert_eq!(
            negotiated,
            Negotiated {
                media_index: 0,
                codec: Codec::G722,
                payload_type: 9,
                telephone_event_pt: Some(101),
                remote_connection: Some(Connection { addr_type: AddrType::Ip4, address: "192.76.120.20".to_owned() }),
                remote_port: 23456,
                remote_rtcp: Some(Rtcp { port: 23457, connection: None }),
                remote_ptime_ms: Some(20),
                direction: Direction::SendRecv,
                remote_hold: false,
            }
        );
        // G.711 only on our side: PCMU, our first choice, even though the offer lists it first too.
        let g711 = LocalMedia { codecs: vec![Codec::Pcma, Codec::Pcmu], ..local() };
        let (_, negotiated) = super::answer(&parse(TRUNK_OFFER), &g711).expect("common codec");
        assert_eq!((negotiated.codec, negotiated.payload_type), (Codec::Pcma, 8));
    }

    #[test]
    fn answers_a_sparse_offer_with_static_types_and_intersected_events() {
        let offer = parse(SPARSE_OFFER);
        assert_eq!(offer.extra, [('i', "session info".to_owned())]);
        assert_eq!(offer.bandwidths, ["AS:84"]);
        assert_eq!(offer.media[0].extra, [('i', "media info".to_owned())]);
        assert_eq!(offer.media[0].rtpmap(8).map(|m| m.encoding), Some("PCMA".to_owned()), "static PT 8");
        assert_eq!(offer.media[0].ptime_ms(), None);
        assert_eq!(offer.media[0].attributes[2], Attribute::MaxPtime(150));
        assert_round_trip(&offer);
        let (answer, negotiated) = answer(&offer, &local()).expect("common codec");
        // We prefer PCMU over PCMA; the offer's order does not matter.
        assert_eq!(
            (negotiated.codec, negotiated.payload_type, negotiated.telephone_event_pt),
            (Codec::Pcmu, 0, Some(96))
        );
        assert_eq!(answer.media[0].formats, ["0", "96"]);
        assert_eq!(answer.media[0].fmtp(96), Some("0-11,16"), "events we do not know are dropped");
        assert_round_trip(&answer);

        let no_dtmf = LocalMedia { telephone_event_pt: None, ..local() };
        let (answer, negotiated) = super::answer(&offer, &no_dtmf).expect("common codec");
        assert_eq!((answer.media[0].formats.len(), negotiated.telephone_event_pt), (1, None));
    }

    #[test]
    fn rejects_streams_with_port_zero_and_keeps_the_m_line_count() {
        let offer = parse(MULTI_OFFER);
        assert_eq!(offer.origin.addr_type, AddrType::Ip6);
        assert_eq!(offer.session_name, " ");
        assert!(offer.is_hold(), "session-level sendonly applies to the audio stream");
        let (answer, negotiated) = answer(&offer, &local()).expect("the third stream has PCMA");
        assert_eq!(answer.media.len(), 3);
        let summary: Vec<_> = answer.media.iter().map(|m| (m.kind.as_str(), m.port, m.formats.join(" "))).collect();
        assert_eq!(
            summary,
            [("video", 0, "96".to_owned()), ("audio", 0, "0".to_owned()), ("audio", 40000, "8".to_owned())]
        );
        assert_eq!(answer.media[1].proto, "RTP/SAVP");
        assert_eq!(negotiated.media_index, 2);
        assert_eq!(negotiated.remote_connection.map(|c| c.address), Some("192.0.2.11".to_owned()));
        assert_eq!(negotiated.remote_rtcp.and_then(|r| r.connection).map(|c| c.address), Some("192.0.2.12".to_owned()));
        // The peer holds us (sendonly): we only receive.
        assert_eq!((negotiated.direction, negotiated.remote_hold), (Direction::RecvOnly, true));
        assert_eq!(answer.media[2].direction(), Some(Direction::RecvOnly));
        assert_round_trip(&offer);
        assert_round_trip(&answer);
    }

    #[test]
    fn detects_every_form_of_hold() {
        for (change, hold) in [("a=sendrecv", false), ("a=sendonly", true), ("a=inactive", true), ("a=recvonly", false)]
        {
            let offer = parse(&TRUNK_OFFER.replace("a=sendrecv", change));
            assert_eq!(offer.is_hold(), hold, "{change}");
        }
        let legacy = parse(&TRUNK_OFFER.replace("c=IN IP4 192.76.120.20", "c=IN IP4 0.0.0.0"));
        assert!(legacy.is_hold());
        let (answer, negotiated) = answer(&legacy, &local()).expect("common codec");
        assert_eq!((negotiated.direction, negotiated.remote_hold), (Direction::RecvOnly, true));
        assert_eq!(answer.media[0].direction(), Some(Direction::RecvOnly));
        let inactive = parse(&TRUNK_OFFER.replace("a=sendrecv", "a=inactive"));
        assert_eq!(super::answer(&inactive, &local()).expect("codec").1.direction, Direction::Inactive);
        // We hold them: an offer they answer recvonly.
        let holding = LocalMedia { direction: Direction::SendOnly, ..local() };
        assert_eq!(super::answer(&parse(TRUNK_OFFER), &holding).expect("codec").1.direction, Direction::SendOnly);
        assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
        assert_eq!(Direction::Inactive.reversed(), Direction::Inactive);
    }

    #[test]
    fn offer_and_accept_answer() {
        let offer = offer(&local()).expect("valid local media");
        let expected = "v=0\r\n\
            o=agentline 4242 1 IN IP4 198.51.100.7\r\n\
            s=agentline\r\n\
            c=IN IP4 198.51.100.7\r\n\
            t=0 0\r\n\
            m=audio 40000 RTP/AVP 9 0 8 101\r\n\
            a=rtpmap:9 G722/8000\r\n\
            a=rtpmap:0 PCMU/8000\r\n\
            a=rtpmap:8 PCMA/8000\r\n\
            a=rtpmap:101 telephone-event/8000\r\n\
            a=fmtp:101 0-16\r\n\
            a=ptime:20\r\n\
            a=sendrecv\r\n";
        assert_eq!(String::from_utf8(offer.to_bytes()).expect("UTF-8"), expected);
        assert_round_trip(&offer);

        // A Twilio-like answer: PCMU only (its GA codecs are G.711), telephone-event kept.
        let reply = "v=0\r\n\
            o=root 1 2 IN IP4 54.172.60.1\r\n\
            s=Twilio Media Gateway\r\n\
            c=IN IP4 54.172.60.1\r\n\
            t=0 0\r\n\
            m=audio 17000 RTP/AVP 0 101\r\n\
            a=rtpmap:0 PCMU/8000\r\n\
            a=rtpmap:101 telephone-event/8000\r\n\
            a=fmtp:101 0-16\r\n\
            a=ptime:20\r\n";
        let negotiated = accept_answer(&parse(reply), &local()).expect("PCMU");
        assert_eq!(
            (negotiated.codec, negotiated.payload_type, negotiated.telephone_event_pt),
            (Codec::Pcmu, 0, Some(101))
        );
        assert_eq!(
            (negotiated.remote_port, negotiated.direction, negotiated.remote_hold),
            (17000, Direction::SendRecv, false)
        );
        // Both our offer and a self-answer agree with each other.
        let (self_answer, _) = answer(&offer, &local()).expect("codec");
        assert_eq!(accept_answer(&self_answer, &local()).map(|n| n.codec), Ok(Codec::G722));
        let rejected = parse(&reply.replace("m=audio 17000", "m=audio 0"));
        assert_eq!(accept_answer(&rejected, &local()), Err(SdpError::NoCommonCodec));
        let other_codec = parse(&reply.replace("RTP/AVP 0 101", "RTP/AVP 18 101"));
        assert_eq!(accept_answer(&other_codec, &local()), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn codec_facts() {
        assert_eq!(
            [Codec::Pcmu, Codec::Pcma, Codec::G722].map(|c| (
                c.static_payload_type(),
                c.clock_rate_hz(),
                c.sample_rate_hz()
            )),
            [(0, 8000, 8000), (8, 8000, 8000), (9, 8000, 16000)]
        );
        assert!(!Codec::G722.matches(&RtpMap {
            payload_type: 9,
            encoding: "G722".to_owned(),
            clock_rate_hz: 16000,
            channels: None
        }));
        assert!(Codec::Pcmu.matches(&RtpMap {
            payload_type: 96,
            encoding: "pcmu".to_owned(),
            clock_rate_hz: 8000,
            channels: Some(1)
        }));
        assert!(!Codec::Pcmu.matches(&RtpMap {
            payload_type: 96,
            encoding: "PCMU".to_owned(),
            clock_rate_hz: 8000,
            channels: Some(2)
        }));
        assert_eq!(events_fmtp(&parse_events("0-11, 16,32,12-12").expect("valid")), "0-12,16,32");
        assert_eq!(parse_events("0-x"), None);
    }

    #[test]
    fn malformed_known_attributes_are_kept_verbatim() {
        for bad in [
            "rtpmap:x PCMU/8000",
            "rtpmap:0 PCMU",
            "rtpmap:0 PCMU/8000/2/1",
            "rtpmap:200 X/8000",
            "ptime:",
            "ptime:2.5",
            "rtcp:1 IN",
            "fmtp: 0-15",
            "sendrecv:x",
        ] {
            let sdp = parse(&format!("{TRUNK_OFFER}a={bad}\r\n"));
            let last = sdp.media[0].attributes.last().expect("appended");
            assert!(matches!(last, Attribute::Other { .. }), "{bad}: {last:?}");
            assert_eq!(last.to_string(), bad);
            assert_round_trip(&sdp);
        }
        let sdp = parse(&format!("{TRUNK_OFFER}a=fmtp:101\r\na=rtcp:9 IN IP6 ::1\r\na=rtpmap:96 opus/48000/2\r\n"));
        let tail = &sdp.media[0].attributes[sdp.media[0].attributes.len() - 3..];
        assert_eq!(tail[0], Attribute::Fmtp { format: "101".to_owned(), params: String::new() });
        assert_eq!(tail[1].to_string(), "rtcp:9 IN IP6 ::1");
        assert_eq!(tail[2].to_string(), "rtpmap:96 opus/48000/2");
        assert_round_trip(&sdp);
    }

    #[test]
    fn opaque_lines_are_kept_in_rfc_order() {
        let text = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nk=prompt\r\nt=0 0\r\nu=http://x\r\nr=7d 1h 0 25h\r\ne=a@b\r\nz=0 0\r\n\
            m=audio 1 RTP/AVP 0\r\nk=clear:x\r\ni=m info\r\n";
        let sdp = parse(text);
        let letters: String = sdp.extra.iter().map(|(l, _)| *l).collect();
        assert_eq!(letters, "uerzk");
        assert_eq!(sdp.media[0].extra.iter().map(|(l, _)| *l).collect::<String>(), "ik");
        let written = String::from_utf8(sdp.to_bytes()).expect("UTF-8");
        assert!(written.starts_with("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nu=http://x\r\ne=a@b\r\nt=0 0\r\nr=7d 1h 0 25h\r\nz=0 0\r\nk=prompt\r\n"), "{written}");
        assert!(written.ends_with("m=audio 1 RTP/AVP 0\r\ni=m info\r\nk=clear:x\r\n"), "{written}");
        assert_round_trip(&sdp);
    }

    fn parse_err(text: &str) -> SdpError {
        SessionDescription::parse(text.as_bytes()).expect_err(text)
    }

    #[test]
    fn err_too_long() {
        let long = vec![b'a'; MAX_SDP_LEN + 1];
        assert_eq!(SessionDescription::parse(&long), Err(SdpError::TooLong { len: MAX_SDP_LEN + 1 }));
    }

    #[test]
    fn err_not_utf8() {
        assert_eq!(SessionDescription::parse(b"v=0\r\ns=\xff\r\n"), Err(SdpError::NotUtf8));
    }

    #[test]
    fn err_control_character() {
        assert_eq!(parse_err("v=0\r\no=- 1 1 IN IP4 h\r\ns=a\x01b\r\n"), SdpError::ControlCharacter { line: 3 });
    }

    #[test]
    fn err_bad_line() {
        assert_eq!(parse_err("v=0\r\nno equals\r\n"), SdpError::BadLine { line: 2 });
        assert_eq!(parse_err("v=0\r\nS=upper\r\n"), SdpError::BadLine { line: 2 });
        assert_eq!(parse_err("v=0\r\ns =x\r\n"), SdpError::BadLine { line: 2 });
    }

    #[test]
    fn err_unknown_type() {
        assert_eq!(parse_err("v=0\r\nx=1\r\n"), SdpError::UnknownType { line: 2, letter: 'x' });
        assert_eq!(parse_err(&format!("{TRUNK_OFFER}y=1\r\n")), SdpError::UnknownType { line: 15, letter: 'y' });
    }

    #[test]
    fn err_bad_version() {
        assert_eq!(parse_err(""), SdpError::BadVersion);
        assert_eq!(parse_err("v=1\r\n"), SdpError::BadVersion);
        assert_eq!(parse_err("o=- 1 1 IN IP4 h\r\nv=0\r\n"), SdpError::BadVersion);
    }

    #[test]
    fn err_missing_line() {
        assert_eq!(parse_err("v=0\r\ns=-\r\n"), SdpError::MissingLine { letter: 'o' });
        assert_eq!(parse_err("v=0\r\no=- 1 1 IN IP4 h\r\n"), SdpError::MissingLine { letter: 's' });
    }

    #[test]
    fn err_unexpected() {
        assert_eq!(parse_err("v=0\r\nv=0\r\n"), SdpError::Unexpected { line: 2, letter: 'v' });
        assert_eq!(parse_err("v=0\r\ns=a\r\ns=b\r\n"), SdpError::Unexpected { line: 3, letter: 's' });
        assert_eq!(
            parse_err("v=0\r\no=- 1 1 IN IP4 h\r\no=- 1 1 IN IP4 h\r\n"),
            SdpError::Unexpected { line: 3, letter: 'o' }
        );
        assert_eq!(parse_err("v=0\r\nc=IN IP4 h\r\nc=IN IP4 h\r\n"), SdpError::Unexpected { line: 3, letter: 'c' });
        assert_eq!(
            parse_err("v=0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 h\r\nc=IN IP4 h\r\n"),
            SdpError::Unexpected { line: 4, letter: 'c' }
        );
        assert_eq!(parse_err("v=0\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n"), SdpError::Unexpected { line: 3, letter: 't' });
    }

    #[test]
    fn err_bad_origin() {
        for o in ["- 1 1 IN IP4", "- 1 1 ATM IP4 h", "- 1 1 IN IPX h", "- 1 1 IN IP4 h extra"] {
            assert_eq!(parse_err(&format!("v=0\r\no={o}\r\n")), SdpError::BadOrigin { line: 2 }, "{o}");
        }
    }

    #[test]
    fn err_bad_connection() {
        for c in ["IN IP4", "IN IP5 h", "XX IP4 h", "IN IP4 h x"] {
            assert_eq!(parse_err(&format!("v=0\r\nc={c}\r\n")), SdpError::BadConnection { line: 2 }, "{c}");
        }
    }

    #[test]
    fn err_bad_timing() {
        for t in ["0", "0 x", "0 0 0", "-1 0", "99999999999999999999999 0"] {
            assert_eq!(parse_err(&format!("v=0\r\nt={t}\r\n")), SdpError::BadTiming { line: 2 }, "{t}");
        }
    }

    #[test]
    fn err_bad_media() {
        for m in ["audio", "audio 1", "audio x RTP/AVP 0", "audio 70000 RTP/AVP 0", "audio 1/ RTP/AVP 0"] {
            assert_eq!(parse_err(&format!("v=0\r\nm={m}\r\n")), SdpError::BadMedia { line: 2 }, "{m}");
        }
    }

    #[test]
    fn err_too_many_media() {
        let text = format!("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n{}", "m=audio 0 RTP/AVP 0\r\n".repeat(MAX_MEDIA + 1));
        assert_eq!(parse_err(&text), SdpError::TooManyMedia { count: MAX_MEDIA + 1 });
        let text = format!("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n{}", "m=audio 0 RTP/AVP 0\r\n".repeat(MAX_MEDIA));
        assert_eq!(parse(&text).media.len(), MAX_MEDIA);
    }

    #[test]
    fn err_no_common_codec() {
        let g729 = parse(&TRUNK_OFFER.replace("RTP/AVP 0 8 9 101", "RTP/AVP 18 101"));
        assert_eq!(answer(&g729, &local()), Err(SdpError::NoCommonCodec));
        let srtp = parse(&TRUNK_OFFER.replace("RTP/AVP", "RTP/SAVP"));
        assert_eq!(answer(&srtp, &local()), Err(SdpError::NoCommonCodec));
        let rejected = parse(&TRUNK_OFFER.replace("m=audio 23456", "m=audio 0"));
        assert_eq!(answer(&rejected, &local()), Err(SdpError::NoCommonCodec));
        let no_media = parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n");
        assert_eq!(answer(&no_media, &local()), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn err_unsendable() {
        let mut bad = local();
        bad.origin.username = "a b".to_owned();
        let what = "an o= or c= field that is empty or not a visible ASCII token";
        assert_eq!(offer(&bad), Err(SdpError::Unsendable { what }));
        let mut bad = local();
        bad.connection.address = String::new();
        assert_eq!(offer(&bad), Err(SdpError::Unsendable { what }));
        let mut bad = local();
        bad.session_name = "x\r\nm=video 1 RTP/AVP 0".to_owned();
        assert_eq!(offer(&bad), Err(SdpError::Unsendable { what: "a session name with a control character" }));
        let bad = LocalMedia { codecs: vec![], ..local() };
        assert_eq!(
            answer(&parse(TRUNK_OFFER), &bad),
            Err(SdpError::Unsendable { what: "an audio stream without codecs" })
        );
        let bad = LocalMedia { telephone_event_pt: Some(128), ..local() };
        assert_eq!(offer(&bad), Err(SdpError::Unsendable { what: "a payload type above 127" }));
    }

    use crate::test_rng::XorShift;

    #[test]
    fn pseudo_fuzz_never_panics_and_what_parses_round_trips() {
        const GOLDEN: [&str; 3] = [TRUNK_OFFER, SPARSE_OFFER, MULTI_OFFER];
        const SPICE: &[u8] = b"\r\n =:/-,0123456789vosctmabikrz audio RTP/AVP IN IP4 \xff";
        let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
        let mut parsed = 0;
        let local = local();
        for i in 0..20_000 {
            let mut bytes: Vec<u8> = if i % 10 == 0 {
                (0..rng.below(200)).map(|_| SPICE[rng.below(SPICE.len())]).collect()
            } else {
                GOLDEN[rng.below(GOLDEN.len())].as_bytes().to_vec()
            };
            for _ in 0..=rng.below(5) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(4) {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, SPICE[rng.below(SPICE.len())]),
                    2 if at < bytes.len() => bytes[at] = rng.next() as u8,
                    _ => bytes.truncate(at.max(bytes.len() * 3 / 4)),
                }
            }
            let Ok(sdp) = SessionDescription::parse(&bytes) else { continue };
            parsed += 1;
            assert_round_trip(&sdp);
            let _ = sdp.is_hold();
            if let Ok((answer, negotiated)) = answer(&sdp, &local) {
                assert_eq!(answer.media.len(), sdp.media.len(), "RFC 3264: one m-line per offered stream");
                assert_round_trip(&answer);
                assert!(local.codecs.contains(&negotiated.codec));
                assert_eq!(answer.media.iter().filter(|m| m.port != 0).count(), 1);
            }
            let _ = accept_answer(&sdp, &local);
        }
        assert!(parsed > 5_000, "only {parsed} inputs parsed; the generator is too hostile");
    }
}

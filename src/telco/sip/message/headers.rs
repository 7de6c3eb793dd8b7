//! The header section: names (compact forms of §7.3.3 folded to full names), the ordered
//! [`Headers`] container, comma-list splitting for the headers whose grammar is a list (§7.3.1),
//! and the typed accessors on [`Message`] (Call-ID, CSeq, Via, From/To, Contact, Route,
//! Session-Expires and Min-SE of RFC 4028, challenges of RFC 2617/7616).

use super::*;
use crate::telco::sip::digest::{AuthKind, Challenge, DigestError};

/// Compact header names (§7.3.3 and the RFCs that registered one since).
pub(super) const COMPACT_FORMS: [(u8, &str); 20] = [
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
    pub(super) name: String,
    pub(super) value: String,
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
pub struct Headers(pub(super) Vec<Header>);

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
pub(super) fn split_list(value: &str) -> Vec<&str> {
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

impl Message {
    pub(super) fn required(&self, name: &'static str) -> Result<&str, SipError> {
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

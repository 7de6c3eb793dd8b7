//! HTTP Digest authentication as SIP uses it (RFC 3261 §22.4, RFC 2617 §3.2, RFC 7616 §3.3-§3.5),
//! pure: a challenge's text in, a typed [`Challenge`] out, and from it plus the credentials the
//! [`Authorization`] value to send back.
//!
//! Supports MD5, MD5-sess, SHA-256 and SHA-256-sess, `qop=auth`, `qop=auth-int` and the
//! RFC 2069 form without `qop`, `nc`/`cnonce`, `opaque` (echoed) and `stale`. Parsing is bounded
//! by [`MAX_VALUE_LEN`] and never panics; values are unescaped from quoted strings before they
//! are hashed, and escaped again when sent.
//!
//! What this module must not do: pick the cnonce or count nonces (the caller passes `cnonce` and
//! `nc`, so the transaction layer owns the randomness and the per-nonce counter), decide when to
//! retry, or read the rest of the message. Which header carries what is [`AuthKind`]'s business:
//! a 401 carries `WWW-Authenticate` and is answered with `Authorization`, a 407 carries
//! `Proxy-Authenticate` and is answered with `Proxy-Authorization`.
//!
//! A challenge as a trunk sends it:
//! `Digest realm="sip.telnyx.com", nonce="YjM5ZDQ4NmEtZjA2Mi00", qop="auth", algorithm=MD5`.

use std::fmt;

use md5::Md5;
use sha2::Sha256;

/// Longest challenge or credentials value parsed; a real one is a few hundred octets.
pub const MAX_VALUE_LEN: usize = 4096;

/// Why a challenge or credentials value could not be parsed, or a response not computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("a {len}-octet value exceeds the limit of {MAX_VALUE_LEN}")]
    TooLong { len: usize },
    #[error("the auth scheme is not Digest")]
    NotDigest,
    #[error("malformed auth-param list at octet {at}")]
    Malformed { at: usize },
    #[error("parameter {name} appears twice")]
    DuplicateParam { name: String },
    #[error("the required parameter {name} is missing")]
    MissingParam { name: &'static str },
    #[error("algorithm {name:?} is not supported")]
    UnsupportedAlgorithm { name: String },
    #[error("the challenge offers qop {offered:?} and none of it is auth or auth-int")]
    UnsupportedQop { offered: String },
    #[error("nc {value:?} is not 8 hexadecimal digits")]
    BadNonceCount { value: String },
    #[error("nc must start at 1")]
    ZeroNonceCount,
    #[error("the cnonce must be a non-empty string of visible characters other than '\"' and '\\\\'")]
    BadCnonce,
    #[error("{field} contains a control character and cannot be sent")]
    ControlCharacter { field: &'static str },
}

/// Which pair of headers an exchange uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// 401 Unauthorized from a registrar or UAS.
    Www,
    /// 407 Proxy Authentication Required from a proxy (most trunks challenge INVITEs this way).
    Proxy,
}

impl AuthKind {
    /// The kind a status code asks for; `None` for anything but 401 and 407.
    pub fn for_status(code: u16) -> Option<Self> {
        match code {
            401 => Some(Self::Www),
            407 => Some(Self::Proxy),
            _ => None,
        }
    }

    /// The header the challenge arrives in.
    pub fn challenge_header(self) -> &'static str {
        match self {
            Self::Www => "WWW-Authenticate",
            Self::Proxy => "Proxy-Authenticate",
        }
    }

    /// The header the answer goes in.
    pub fn credentials_header(self) -> &'static str {
        match self {
            Self::Www => "Authorization",
            Self::Proxy => "Proxy-Authorization",
        }
    }
}

/// The hash a challenge names (RFC 7616 §3.3). A missing `algorithm` means MD5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    /// Anything else (`SHA-512-256`, `AKAv1-MD5`, …), kept so a caller can skip to the next
    /// challenge; [`Challenge::respond`] refuses it.
    Other(String),
}

impl Algorithm {
    /// Case-insensitive, as RFC 7616 §3.3 says tokens compare.
    pub fn parse(token: &str) -> Self {
        if token.eq_ignore_ascii_case("MD5") {
            Self::Md5
        } else if token.eq_ignore_ascii_case("MD5-sess") {
            Self::Md5Sess
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Self::Sha256
        } else if token.eq_ignore_ascii_case("SHA-256-sess") {
            Self::Sha256Sess
        } else {
            Self::Other(token.to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
            Self::Other(name) => name,
        }
    }

    pub fn is_supported(&self) -> bool {
        !matches!(self, Self::Other(_))
    }

    fn is_session(&self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }

    /// Lower-case hex of the hash of `data`; `None` for an unsupported algorithm.
    fn hash_hex(&self, data: &[u8]) -> Option<String> {
        use md5::Digest as _;
        use sha2::Digest as _;
        Some(match self {
            Self::Md5 | Self::Md5Sess => hex(&Md5::digest(data)[..]),
            Self::Sha256 | Self::Sha256Sess => hex(&Sha256::digest(data)[..]),
            Self::Other(_) => return None,
        })
    }
}

impl fmt::Display for Algorithm {
    /// A token as sent; an unknown name that is not a token (it arrived quoted) is quoted again.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.as_str();
        if !name.is_empty() && name.bytes().all(is_token_byte) { f.write_str(name) } else { Quoted(name).fmt(f) }
    }
}

/// Quality of protection (RFC 2617 §3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// Authenticates the request line; what every trunk offers.
    Auth,
    /// Also covers the body.
    AuthInt,
}

impl Qop {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::AuthInt => "auth-int",
        }
    }
}

/// One `Digest` challenge from a `WWW-Authenticate` or `Proxy-Authenticate` header.
///
/// `Digest realm="atlanta.com", nonce="84a4cc6f", qop="auth", opaque="", stale=FALSE`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The qop options as offered, in order; empty means the RFC 2069 exchange without qop.
    pub qop: Vec<String>,
    /// The previous credentials were right but the nonce expired: retry without asking the user.
    pub stale: bool,
    pub domain: Option<String>,
}

impl Challenge {
    /// A challenge with the given realm and nonce, MD5, no qop; what a test UAS sends.
    pub fn new(realm: &str, nonce: &str) -> Self {
        Self {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop: Vec::new(),
            stale: false,
            domain: None,
        }
    }

    /// Parses a header value that starts with the `Digest` scheme. Unknown parameters (`charset`,
    /// `userhash`) are ignored; a repeated one is an error.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let params = parse_digest_params(value)?;
        let mut challenge = Self::new("", "");
        let (mut realm, mut nonce) = (None, None);
        for (name, value) in params {
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "nonce" => nonce = Some(value),
                "opaque" => challenge.opaque = Some(value),
                "algorithm" => challenge.algorithm = Algorithm::parse(&value),
                "qop" => {
                    challenge.qop =
                        value.split(',').map(str::trim).filter(|q| !q.is_empty()).map(str::to_owned).collect()
                }
                "stale" => challenge.stale = value.eq_ignore_ascii_case("true"),
                "domain" => challenge.domain = Some(value),
                _ => {}
            }
        }
        challenge.realm = realm.ok_or(DigestError::MissingParam { name: "realm" })?;
        challenge.nonce = nonce.ok_or(DigestError::MissingParam { name: "nonce" })?;
        Ok(challenge)
    }

    /// The qop this client will use: `auth` when offered, else `auth-int`, else none (when the
    /// challenge offers none).
    pub fn chosen_qop(&self) -> Result<Option<Qop>, DigestError> {
        if self.qop.is_empty() {
            return Ok(None);
        }
        if self.qop.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
            Ok(Some(Qop::Auth))
        } else if self.qop.iter().any(|q| q.eq_ignore_ascii_case("auth-int")) {
            Ok(Some(Qop::AuthInt))
        } else {
            Err(DigestError::UnsupportedQop { offered: self.qop.join(",") })
        }
    }

    /// Computes the credentials for `request` (RFC 2617 §3.2.2, RFC 7616 §3.4.1).
    ///
    /// `cnonce` is the client's fresh random value and `nc` how many times this nonce has been
    /// used including this time (1 for the first request); both are ignored without qop.
    pub fn respond(
        &self,
        username: &str,
        password: &str,
        request: &DigestRequest<'_>,
        cnonce: &str,
        nc: u32,
    ) -> Result<Authorization, DigestError> {
        let algorithm = &self.algorithm;
        if !algorithm.is_supported() {
            return Err(DigestError::UnsupportedAlgorithm { name: algorithm.as_str().to_owned() });
        }
        let qop = self.chosen_qop()?;
        let uses_cnonce = qop.is_some() || algorithm.is_session();
        if uses_cnonce {
            if cnonce.is_empty() || !cnonce.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
                return Err(DigestError::BadCnonce);
            }
            if qop.is_some() && nc == 0 {
                return Err(DigestError::ZeroNonceCount);
            }
        }
        for (field, text) in [("username", username), ("uri", request.uri), ("method", request.method)] {
            if text.chars().any(char::is_control) {
                return Err(DigestError::ControlCharacter { field });
            }
        }

        let hash = |data: String| algorithm.hash_hex(data.as_bytes()).unwrap_or_default();
        let mut ha1 = hash(format!("{username}:{}:{password}", self.realm));
        if algorithm.is_session() {
            ha1 = hash(format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = match qop {
            Some(Qop::AuthInt) => {
                let body_hash = algorithm.hash_hex(request.body).unwrap_or_default();
                hash(format!("{}:{}:{body_hash}", request.method, request.uri))
            }
            _ => hash(format!("{}:{}", request.method, request.uri)),
        };
        let response = match qop {
            Some(qop) => hash(format!("{ha1}:{}:{nc:08x}:{cnonce}:{}:{ha2}", self.nonce, qop.as_str())),
            None => hash(format!("{ha1}:{}:{ha2}", self.nonce)),
        };
        Ok(Authorization {
            username: username.to_owned(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: request.uri.to_owned(),
            response,
            algorithm: algorithm.clone(),
            cnonce: uses_cnonce.then(|| cnonce.to_owned()),
            opaque: self.opaque.clone(),
            qop,
            nc: qop.map(|_| nc),
        })
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest realm={}, nonce={}", Quoted(&self.realm), Quoted(&self.nonce))?;
        if let Some(domain) = &self.domain {
            write!(f, ", domain={}", Quoted(domain))?;
        }
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque={}", Quoted(opaque))?;
        }
        write!(f, ", algorithm={}", self.algorithm)?;
        if !self.qop.is_empty() {
            write!(f, ", qop={}", Quoted(&self.qop.join(",")))?;
        }
        if self.stale {
            f.write_str(", stale=TRUE")?;
        }
        Ok(())
    }
}

/// The parts of the request that the response hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRequest<'a> {
    /// `INVITE`, `REGISTER`, …; for an ACK or CANCEL of an authenticated INVITE, the INVITE's
    /// credentials are reused (RFC 3261 §22.1), not recomputed with this method.
    pub method: &'a str,
    /// The Request-URI exactly as it is sent (`sip:+14155550123@sip.telnyx.com`).
    pub uri: &'a str,
    /// The message body; hashed only for `qop=auth-int`.
    pub body: &'a [u8],
}

/// The `Authorization` / `Proxy-Authorization` value, built by [`Challenge::respond`] or parsed.
///
/// `Digest username="bob", realm="biloxi.com", nonce="dcd98b", uri="sip:bob@biloxi.com",
/// response="245f2341…", algorithm=MD5`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// Lower-case hex digest.
    pub response: String,
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    pub qop: Option<Qop>,
    /// Sent as 8 hex digits.
    pub nc: Option<u32>,
}

impl Authorization {
    /// Parses credentials as a UAS receives them (the inverse of `Display`).
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let params = parse_digest_params(value)?;
        let mut found: [Option<String>; 5] = Default::default();
        const REQUIRED: [&str; 5] = ["username", "realm", "nonce", "uri", "response"];
        let mut auth = Self {
            username: String::new(),
            realm: String::new(),
            nonce: String::new(),
            uri: String::new(),
            response: String::new(),
            algorithm: Algorithm::Md5,
            cnonce: None,
            opaque: None,
            qop: None,
            nc: None,
        };
        for (name, value) in params {
            let lower = name.to_ascii_lowercase();
            if let Some(i) = REQUIRED.iter().position(|r| *r == lower) {
                found[i] = Some(value);
                continue;
            }
            match lower.as_str() {
                "algorithm" => auth.algorithm = Algorithm::parse(&value),
                "cnonce" => auth.cnonce = Some(value),
                "opaque" => auth.opaque = Some(value),
                "qop" => {
                    auth.qop = Some(if value.eq_ignore_ascii_case("auth") {
                        Qop::Auth
                    } else if value.eq_ignore_ascii_case("auth-int") {
                        Qop::AuthInt
                    } else {
                        return Err(DigestError::UnsupportedQop { offered: value });
                    })
                }
                "nc" => {
                    let valid = value.len() == 8 && value.bytes().all(|b| b.is_ascii_hexdigit());
                    let nc = u32::from_str_radix(&value, 16).ok().filter(|_| valid);
                    auth.nc = Some(nc.ok_or(DigestError::BadNonceCount { value })?);
                }
                _ => {}
            }
        }
        let [username, realm, nonce, uri, response] = found;
        auth.username = username.ok_or(DigestError::MissingParam { name: "username" })?;
        auth.realm = realm.ok_or(DigestError::MissingParam { name: "realm" })?;
        auth.nonce = nonce.ok_or(DigestError::MissingParam { name: "nonce" })?;
        auth.uri = uri.ok_or(DigestError::MissingParam { name: "uri" })?;
        auth.response = response.ok_or(DigestError::MissingParam { name: "response" })?;
        Ok(auth)
    }
}

impl fmt::Display for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            Quoted(&self.username),
            Quoted(&self.realm),
            Quoted(&self.nonce),
            Quoted(&self.uri),
            Quoted(&self.response),
            self.algorithm
        )?;
        if let Some(cnonce) = &self.cnonce {
            write!(f, ", cnonce={}", Quoted(cnonce))?;
        }
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque={}", Quoted(opaque))?;
        }
        if let Some(qop) = self.qop {
            // Unquoted, as RFC 2617 §3.2.2 writes it; some servers reject a quoted qop here.
            write!(f, ", qop={}", qop.as_str())?;
        }
        if let Some(nc) = self.nc {
            write!(f, ", nc={nc:08x}")?;
        }
        Ok(())
    }
}

/// Writes a quoted-string, escaping `"` and `\` (RFC 3261 §25.1).
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            if c == '"' || c == '\\' {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    out
}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `Digest` LWS `name=value` *( "," `name=value` ), values a token or a quoted-string; returns the
/// values unquoted. Empty list elements (`a=1,,b=2`) are allowed, as the `#rule` says.
fn parse_digest_params(value: &str) -> Result<Vec<(String, String)>, DigestError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(DigestError::TooLong { len: value.len() });
    }
    let bytes = value.as_bytes();
    let mut at = 0;
    while bytes.get(at).is_some_and(|&b| is_lws(b)) {
        at += 1;
    }
    let scheme_end = bytes[at..].iter().position(|&b| is_lws(b)).map_or(bytes.len(), |p| at + p);
    if !value[at..scheme_end].eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    at = scheme_end;

    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        while bytes.get(at).is_some_and(|&b| is_lws(b) || b == b',') {
            at += 1;
        }
        if at >= bytes.len() {
            break;
        }
        let name_start = at;
        while bytes.get(at).is_some_and(|&b| is_token_byte(b)) {
            at += 1;
        }
        if at == name_start {
            return Err(DigestError::Malformed { at });
        }
        let name = &value[name_start..at];
        while bytes.get(at).is_some_and(|&b| is_lws(b)) {
            at += 1;
        }
        if bytes.get(at) != Some(&b'=') {
            return Err(DigestError::Malformed { at });
        }
        at += 1;
        while bytes.get(at).is_some_and(|&b| is_lws(b)) {
            at += 1;
        }
        let param_value = if bytes.get(at) == Some(&b'"') {
            let (text, end) = unquote(value, at).ok_or(DigestError::Malformed { at })?;
            at = end;
            text
        } else {
            // A token; lenient about the base64 characters (`/`, `=`) servers put in unquoted nonces.
            let start = at;
            while bytes.get(at).is_some_and(|&b| b.is_ascii_graphic() && b != b',' && b != b'"') {
                at += 1;
            }
            if at == start {
                return Err(DigestError::Malformed { at });
            }
            value[start..at].to_owned()
        };
        if params.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(DigestError::DuplicateParam { name: name.to_owned() });
        }
        params.push((name.to_owned(), param_value));
        while bytes.get(at).is_some_and(|&b| is_lws(b)) {
            at += 1;
        }
        match bytes.get(at) {
            None | Some(b',') => {}
            Some(_) => return Err(DigestError::Malformed { at }),
        }
    }
    Ok(params)
}

/// The quoted-string starting at `start` (which holds `"`): its unescaped text and the index
/// after the closing quote.
fn unquote(value: &str, start: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = value.get(start + 1..)?.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, start + 1 + i + 1)),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE_URI: &str = "sip:+14155550123@sip.telnyx.com";

    fn request<'a>(method: &'a str, uri: &'a str) -> DigestRequest<'a> {
        DigestRequest { method, uri, body: b"" }
    }

    #[test]
    fn rfc2617_mufasa_example() {
        // RFC 2617 §3.5; the response value is the one printed there (and recomputed with
        // Python hashlib).
        let challenge = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("RFC example parses");
        assert_eq!(challenge.qop, vec!["auth", "auth-int"]);
        assert_eq!(challenge.algorithm, Algorithm::Md5);
        let auth = challenge
            .respond("Mufasa", "Circle Of Life", &request("GET", "/dir/index.html"), "0a4f113b", 1)
            .expect("computable");
        assert_eq!(auth.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(auth.qop, Some(Qop::Auth));
        assert_eq!(
            auth.to_string(),
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", qop=auth, nc=00000001"
        );
        assert_eq!(Authorization::parse(&auth.to_string()), Ok(auth));
    }

    #[test]
    fn rfc7616_md5_and_sha256_examples() {
        // RFC 7616 §3.9.1 (note "Circle of Life" with a lower-case "of" there).
        for (algorithm, expected) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ] {
            let challenge = Challenge::parse(&format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={algorithm}, \
                 nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            ))
            .expect("RFC example parses");
            let auth = challenge
                .respond(
                    "Mufasa",
                    "Circle of Life",
                    &request("GET", "/dir/index.html"),
                    "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                    1,
                )
                .expect("computable");
            assert_eq!(auth.response, expected, "{algorithm}");
        }
    }

    // The SIP vectors below were computed independently with Python's hashlib:
    //   HA1 = H("agentline:sip.telnyx.com:s3cr3t-P4ss"), HA2 = H("<METHOD>:<uri>[:H(body)]"),
    //   response = H(HA1:nonce[:nc:cnonce:qop]:HA2), MD5-sess HA1 = H(H(user:realm:pw):nonce:cnonce).

    #[test]
    fn sip_register_without_qop_md5() {
        let challenge =
            Challenge::parse("Digest realm=\"sip.telnyx.com\", nonce=\"4f9c2a1e0b6d3a87\"").expect("valid challenge");
        let auth = challenge
            .respond("agentline", "s3cr3t-P4ss", &request("REGISTER", "sip:sip.telnyx.com"), "ignored", 0)
            .expect("computable");
        assert_eq!(auth.response, "bc58bdf08321ec0f9bc32f53aa0d2871");
        assert_eq!((auth.cnonce.as_deref(), auth.qop, auth.nc), (None, None, None));
        assert_eq!(
            auth.to_string(),
            "Digest username=\"agentline\", realm=\"sip.telnyx.com\", nonce=\"4f9c2a1e0b6d3a87\", \
             uri=\"sip:sip.telnyx.com\", response=\"bc58bdf08321ec0f9bc32f53aa0d2871\", algorithm=MD5"
        );
    }

    #[test]
    fn sip_invite_qop_auth_sha256_second_use_of_nonce() {
        let challenge = Challenge::parse(
            "Digest realm=\"sip.telnyx.com\",nonce=\"YjM5ZDQ4NmEtZjA2Mi00\",qop=\"auth\",algorithm=SHA-256,stale=TRUE",
        )
        .expect("valid challenge");
        assert!(challenge.stale);
        let auth = challenge
            .respond("agentline", "s3cr3t-P4ss", &request("INVITE", INVITE_URI), "8c1e7a55d2f04b39", 2)
            .expect("computable");
        assert_eq!(auth.response, "2c3be13284d0a064b30fd034c9266bb72f7270fa3dbba12918eb0ee49cb23442");
        assert!(auth.to_string().ends_with("algorithm=SHA-256, cnonce=\"8c1e7a55d2f04b39\", qop=auth, nc=00000002"));
    }

    #[test]
    fn sip_invite_md5_sess_and_auth_int() {
        let mut challenge = Challenge::parse(
            "Digest realm=\"sip.telnyx.com\", nonce=\"YjM5ZDQ4NmEtZjA2Mi00\", qop=\"auth\", algorithm=MD5-sess",
        )
        .expect("valid challenge");
        let sess = challenge
            .respond("agentline", "s3cr3t-P4ss", &request("INVITE", INVITE_URI), "8c1e7a55d2f04b39", 1)
            .expect("computable");
        assert_eq!(sess.response, "2f6a2aaa89b72b2d6d80af7872c10064");
        assert_eq!(sess.algorithm, Algorithm::Md5Sess);

        challenge.algorithm = Algorithm::Md5;
        challenge.qop = vec!["auth-int".to_owned()];
        let with_body = DigestRequest { method: "INVITE", uri: INVITE_URI, body: b"v=0\r\n" };
        let int = challenge.respond("agentline", "s3cr3t-P4ss", &with_body, "8c1e7a55d2f04b39", 1).expect("computable");
        assert_eq!(int.response, "a54e5937d9f954288eb791faa904bd50");
        assert_eq!(int.qop, Some(Qop::AuthInt));
    }

    #[test]
    fn challenge_display_round_trips_and_escapes() {
        let challenge = Challenge {
            realm: "we \"quote\" \\ this".to_owned(),
            nonce: "n".to_owned(),
            opaque: Some(String::new()),
            algorithm: Algorithm::Sha256,
            qop: vec!["auth".to_owned(), "auth-int".to_owned()],
            stale: true,
            domain: Some("sip:a.example sip:b.example".to_owned()),
        };
        let text = challenge.to_string();
        assert!(text.contains(r#"realm="we \"quote\" \\ this""#), "{text}");
        assert_eq!(Challenge::parse(&text), Ok(challenge));
        assert_eq!(
            Challenge::new("r", "n").to_string(),
            "Digest realm=\"r\", nonce=\"n\", algorithm=MD5",
            "no qop, not stale"
        );
    }

    #[test]
    fn parsing_is_tolerant_where_the_grammar_is() {
        // Scheme case, LWS around '=', empty list elements, unknown params, unquoted base64 nonce.
        let c = Challenge::parse("  digest\trealm = \"r\" ,, nonce=abc/+= , charset=UTF-8, userhash=false")
            .expect("tolerated");
        assert_eq!((c.realm.as_str(), c.nonce.as_str()), ("r", "abc/+="));
        assert_eq!(Algorithm::parse("sha-256-SESS"), Algorithm::Sha256Sess);
        assert_eq!(Algorithm::parse("SHA-512-256"), Algorithm::Other("SHA-512-256".to_owned()));
        assert_eq!(AuthKind::for_status(407).map(AuthKind::credentials_header), Some("Proxy-Authorization"));
        assert_eq!(AuthKind::for_status(401).map(AuthKind::challenge_header), Some("WWW-Authenticate"));
        assert_eq!(AuthKind::for_status(403), None);
    }

    #[test]
    fn username_with_quote_is_escaped_and_hashed_unescaped() {
        let challenge = Challenge::new("r", "n");
        let auth = challenge.respond("a\"b", "pw", &request("OPTIONS", "sip:x"), "c", 1).expect("computable");
        assert!(auth.to_string().starts_with(r#"Digest username="a\"b""#));
        let parsed = Authorization::parse(&auth.to_string()).expect("parses back");
        assert_eq!(parsed.username, "a\"b");
        assert_eq!(parsed, auth);
    }

    #[test]
    fn err_too_long() {
        let long = format!("Digest realm=\"{}\"", "x".repeat(MAX_VALUE_LEN));
        assert_eq!(Challenge::parse(&long), Err(DigestError::TooLong { len: long.len() }));
    }

    #[test]
    fn err_not_digest() {
        assert_eq!(Challenge::parse("Basic realm=\"x\""), Err(DigestError::NotDigest));
        assert_eq!(Challenge::parse(""), Err(DigestError::NotDigest));
        assert_eq!(Challenge::parse("Digestrealm=\"x\""), Err(DigestError::NotDigest));
    }

    #[test]
    fn err_malformed() {
        assert_eq!(Challenge::parse("Digest realm"), Err(DigestError::Malformed { at: 12 }));
        assert_eq!(Challenge::parse("Digest realm=\"open"), Err(DigestError::Malformed { at: 13 }));
        assert_eq!(Challenge::parse("Digest =x"), Err(DigestError::Malformed { at: 7 }));
        assert_eq!(Challenge::parse("Digest realm=,"), Err(DigestError::Malformed { at: 13 }));
        assert_eq!(Challenge::parse("Digest realm=\"a\" nonce=\"b\""), Err(DigestError::Malformed { at: 17 }));
    }

    #[test]
    fn err_duplicate_param() {
        assert_eq!(
            Challenge::parse("Digest realm=\"a\", nonce=\"b\", REALM=\"c\""),
            Err(DigestError::DuplicateParam { name: "REALM".to_owned() })
        );
    }

    #[test]
    fn err_missing_param() {
        assert_eq!(Challenge::parse("Digest nonce=\"b\""), Err(DigestError::MissingParam { name: "realm" }));
        assert_eq!(Challenge::parse("Digest realm=\"a\""), Err(DigestError::MissingParam { name: "nonce" }));
        assert_eq!(
            Authorization::parse("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\""),
            Err(DigestError::MissingParam { name: "response" })
        );
    }

    #[test]
    fn err_unsupported_algorithm() {
        let mut c = Challenge::new("r", "n");
        c.algorithm = Algorithm::parse("AKAv1-MD5");
        assert_eq!(
            c.respond("u", "p", &request("INVITE", "sip:x"), "c", 1),
            Err(DigestError::UnsupportedAlgorithm { name: "AKAv1-MD5".to_owned() })
        );
    }

    #[test]
    fn err_unsupported_qop() {
        let mut c = Challenge::new("r", "n");
        c.qop = vec!["auth-conf".to_owned()];
        assert_eq!(
            c.respond("u", "p", &request("INVITE", "sip:x"), "c", 1),
            Err(DigestError::UnsupportedQop { offered: "auth-conf".to_owned() })
        );
        assert_eq!(
            Authorization::parse("Digest qop=token"),
            Err(DigestError::UnsupportedQop { offered: "token".to_owned() })
        );
    }

    #[test]
    fn err_bad_nonce_count() {
        for nc in ["1", "0000000g", "000000001"] {
            assert_eq!(
                Authorization::parse(&format!("Digest nc={nc}")),
                Err(DigestError::BadNonceCount { value: nc.to_owned() })
            );
        }
    }

    #[test]
    fn err_zero_nonce_count_and_bad_cnonce() {
        let mut c = Challenge::new("r", "n");
        c.qop = vec!["auth".to_owned()];
        let req = request("INVITE", "sip:x");
        assert_eq!(c.respond("u", "p", &req, "c", 0), Err(DigestError::ZeroNonceCount));
        for cnonce in ["", "a b", "a\"b", "a\\b"] {
            assert_eq!(c.respond("u", "p", &req, cnonce, 1), Err(DigestError::BadCnonce), "{cnonce:?}");
        }
    }

    #[test]
    fn err_control_character() {
        let c = Challenge::new("r", "n");
        assert_eq!(
            c.respond("u\r\nX: y", "p", &request("INVITE", "sip:x"), "c", 1),
            Err(DigestError::ControlCharacter { field: "username" })
        );
        assert_eq!(
            c.respond("u", "p", &request("INVITE", "sip:x\n"), "c", 1),
            Err(DigestError::ControlCharacter { field: "uri" })
        );
    }

    use crate::test_rng::XorShift;

    #[test]
    fn pseudo_fuzz_never_panics_and_what_parses_round_trips() {
        const SEEDS: [&str; 3] = [
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
            "Digest realm=\"sip.telnyx.com\",nonce=\"YjM5ZDQ4NmEtZjA2Mi00\",qop=\"auth\",algorithm=SHA-256,stale=TRUE",
            "Digest username=\"Mufasa\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"6629\", algorithm=MD5, cnonce=\"0a\", qop=auth, nc=00000001",
        ];
        const ALPHABET: &[u8] = b"\"\\=, \t\r\nDigestrealmnonceqopauth-int\xc3\xa9";
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let mut parsed = 0;
        for i in 0..20_000 {
            let mut bytes = SEEDS[i % SEEDS.len()].as_bytes().to_vec();
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(3) {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                    _ if at < bytes.len() => bytes[at] = rng.next() as u8,
                    _ => {}
                }
            }
            let Ok(text) = std::str::from_utf8(&bytes) else { continue };
            if let Ok(challenge) = Challenge::parse(text) {
                parsed += 1;
                let _ = challenge.respond("u", "p", &request("INVITE", "sip:x"), "c", 1);
                let again = Challenge::parse(&challenge.to_string());
                // Display normalises (e.g. drops unknown params), so compare what it keeps.
                assert_eq!(again.as_ref().map(|c| &c.nonce), Ok(&challenge.nonce), "{text:?}");
            }
            if let Ok(auth) = Authorization::parse(text) {
                parsed += 1;
                assert_eq!(Authorization::parse(&auth.to_string()), Ok(auth), "{text:?}");
            }
        }
        assert!(parsed > 5_000, "only {parsed} inputs parsed");
    }
}

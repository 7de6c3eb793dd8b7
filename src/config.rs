//! The one typed configuration: a TOML file (`--config` / `AGENTLINE_CONFIG`) overlaid with
//! `AGENTLINE_*` environment variables, validated once at start. Nothing else in the crate
//! reads the environment.
//!
//! Every key has an environment name: a top-level key `listen` is `AGENTLINE_LISTEN`, a key
//! `seed_numbers` in section `[sim]` is `AGENTLINE_SIM_SEED_NUMBERS`. [`KEYS`] lists them all,
//! with their types; a test checks it covers every field.
//!
//! A leaf: serde types and their syntax checks only. It imports nothing of ours but the other
//! leaves ([`crate::e164`], [`crate::secret`]); turning these values into each part's settings
//! (payment terms, SMPP binds, the SIP trunk) is `app`'s job, and the checks that need those
//! parts (the network's token defaults, the relayer key) run there too. Choices are closed
//! enums ([`SettlementBackend`], [`BindMode`], [`CodecName`]), not strings.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::e164::E164;
/// Re-exported so `config::Secret` keeps naming the type the configuration holds.
pub use crate::secret::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// `sqlite://PATH` (embedded default) or `postgres://…`.
    pub database_url: String,
    /// Bearer key of the operator admin API; the admin API is disabled while unset.
    pub admin_key: Option<Secret>,
    /// Absolute base URL clients reach this service at; derived from `listen` when unset.
    pub public_url: Option<String>,
    /// How the service names itself to agents (llms.txt, sign-in messages).
    pub service_name: String,
    /// Settlement backend: `none` (sandbox: verify fully, move nothing), `chain`, `facilitator`.
    pub settlement: SettlementBackend,
    /// Price of one plan in the asset's atomic units (USDC: 6 decimals).
    pub price: String,
    /// `base`, `base-sepolia`, another x402 v1 name, or `eip155:<chain id>`.
    pub network: String,
    /// The token contract; defaults to USDC on base and base-sepolia.
    pub asset: Option<String>,
    /// Where payments go. Required unless `settlement = "none"`.
    pub pay_to: Option<String>,
    /// The token's EIP-712 `name()`; defaults to "USD Coin" on base, "USDC" on base-sepolia.
    pub token_name: Option<String>,
    /// The token's EIP-712 `version()`.
    pub token_version: String,
    /// JSON-RPC endpoint of the chain (`settlement = "chain"`).
    pub rpc_url: Option<String>,
    /// The relayer's private key that submits settlements and pays gas (`settlement = "chain"`).
    pub relayer_key: Option<Secret>,
    /// Base URL of an x402 facilitator (`settlement = "facilitator"`).
    pub facilitator_url: Option<String>,
    /// Seconds to wait for a settlement receipt before the payment is treated as pending.
    pub receipt_timeout_secs: u64,
    /// Log filter in `tracing_subscriber::EnvFilter` syntax.
    pub log: String,
    pub database: DatabaseConfig,
    pub limits: LimitsConfig,
    pub subscriptions: SubscriptionsConfig,
    pub sim: SimConfig,
    /// A carrier SMSC for SMS: `smpp://SYSTEM_ID:PASSWORD@HOST:PORT`, or `smpps://…` for SMPP
    /// over TLS (user and password percent-encoded). Unset: SMS runs on the simulated network.
    pub smpp_url: Option<Secret>,
    pub smpp: SmppConfig,
    pub voice: VoiceConfig,
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub tls: TlsConfig,
}

/// TLS for every link that leaves the machine (clients: chain RPC, facilitator).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// A PEM bundle of extra trusted roots (a private CA), on top of the built-in Mozilla
    /// roots. Certificates are always verified.
    pub ca_file: Option<String>,
}

/// The carrier SIP trunk. Unset `trunk`: voice runs on the simulated network.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// `sip:USER:PASSWORD@HOST:PORT[;transport=tcp]` (user and password optional and
    /// percent-encoded; the port defaults to 5060, the transport to UDP).
    pub trunk: Option<Secret>,
    /// Where SIP is received, over UDP and TCP both.
    pub listen: String,
    /// The address to advertise in Via, Contact and SDP (behind 1:1 NAT); default: the
    /// listening address, or the address the route to the trunk leaves from when listening on
    /// all interfaces.
    pub public_addr: Option<String>,
    /// `true` for a credential trunk that expects REGISTER; IP-authenticated trunks do not.
    pub register: bool,
    /// The registration lifetime asked for; refreshed at 75 %.
    pub register_expires_secs: u64,
    /// RFC 4028 session interval offered and accepted at most; 0 disables session timers.
    pub session_expires_secs: u64,
    /// How long an outbound INVITE may go without a final answer (Timer B is 32 s regardless).
    pub invite_timeout_secs: u64,
    /// Codecs offered and accepted, in preference order: any of `G722`, `PCMU`, `PCMA`.
    pub codecs: String,
    /// Let agents bridge calls to SIP endpoints on loopback or private addresses
    /// (`callback_sip_uri`, `inbound_sip_uri`): only for a PBX on the operator's own network.
    pub allow_private_endpoints: bool,
    /// Networks the carrier sends signalling from besides the trunk host's addresses (its
    /// published ranges), comma-separated CIDRs: INVITEs are accepted from these too.
    pub carrier_networks: String,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            trunk: None,
            listen: "0.0.0.0:5060".to_owned(),
            public_addr: None,
            register: false,
            register_expires_secs: 3600,
            session_expires_secs: 1800,
            invite_timeout_secs: 60,
            codecs: "G722,PCMU,PCMA".to_owned(),
            allow_private_endpoints: false,
            carrier_networks: String::new(),
        }
    }
}

/// RTP media for the SIP trunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpConfig {
    /// The UDP ports calls take their media sockets from, `LOW-HIGH` inclusive (one per call).
    pub ports: String,
    /// Jitter buffer depth for audio from the trunk, in milliseconds (a multiple of 20); the
    /// buffer absorbs this much network jitter and adds this much delay.
    pub jitter_ms: u64,
}

impl Default for RtpConfig {
    fn default() -> Self {
        Self { ports: "30000-30999".to_owned(), jitter_ms: 20 }
    }
}

/// Where the trunk is and how we authenticate to it, from `sip.trunk`.
#[derive(Debug, Clone)]
pub struct SipTrunk {
    pub host: String,
    pub port: u16,
    pub tcp: bool,
    /// Digest user; empty for an IP-authenticated trunk.
    pub user: String,
    pub password: Secret,
}

impl SipTrunk {
    /// Parses `sip:USER:PASSWORD@HOST:PORT[;transport=udp|tcp]`.
    pub fn parse(uri: &str) -> Result<Self, ValueError> {
        let rest = uri.strip_prefix("sip:").ok_or(ValueError::Scheme { expected: "sip:" })?;
        let (rest, params) = rest.split_once(';').unwrap_or((rest, ""));
        let mut tcp = false;
        for param in params.split(';').filter(|p| !p.is_empty()) {
            match param.split_once('=') {
                Some((name, value)) if name.eq_ignore_ascii_case("transport") => {
                    tcp = match value.to_ascii_lowercase().as_str() {
                        "udp" => false,
                        "tcp" => true,
                        _ => return Err(ValueError::Transport),
                    }
                }
                _ => return Err(ValueError::UnknownParameter { param: param.to_owned() }),
            }
        }
        let (user, password, hostport) = split_userinfo(rest)?;
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
                (h, p.parse::<u16>().ok().filter(|&p| p > 0).ok_or(ValueError::Port)?)
            }
            _ => (hostport, 5060),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return Err(ValueError::Host);
        }
        Ok(Self { host: host.to_owned(), port, tcp, user, password: Secret::new(password) })
    }
}

/// A codec the SIP trunk may offer and accept, as named in `sip.codecs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecName {
    /// G.722 (16 kHz audio).
    G722,
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl CodecName {
    /// `G722`, `PCMU` or `PCMA`, in any case.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "G722" => Some(Self::G722),
            "PCMU" => Some(Self::Pcmu),
            "PCMA" => Some(Self::Pcma),
            _ => None,
        }
    }
}

/// Parses `G722,PCMU,PCMA` (any order, at least one, no repeats).
pub fn parse_codecs(text: &str) -> Result<Vec<CodecName>, ValueError> {
    let mut codecs = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let codec = CodecName::parse(name).ok_or_else(|| ValueError::UnknownCodec { name: name.to_owned() })?;
        if codecs.contains(&codec) {
            return Err(ValueError::DuplicateCodec { name: name.to_owned() });
        }
        codecs.push(codec);
    }
    if codecs.is_empty() {
        return Err(ValueError::NoCodec);
    }
    Ok(codecs)
}

/// An IP network from `sip.carrier_networks`: `203.0.113.0/24`, or one address (the full
/// prefix length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    pub network: IpAddr,
    pub prefix: u8,
}

impl IpNetwork {
    /// Parses `ADDR/PREFIX` or a bare address.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let (addr, prefix) = text.trim().split_once('/').unwrap_or((text.trim(), ""));
        let network: IpAddr = addr.parse().map_err(|_| ValueError::NotANetwork { text: text.to_owned() })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| ValueError::PrefixLength { text: text.to_owned() })?
        };
        Ok(Self { network, prefix })
    }
}

/// Parses a comma-separated list of CIDRs (`203.0.113.0/24, 198.51.100.7`); empty is none.
pub fn parse_networks(text: &str) -> Result<Vec<IpNetwork>, ValueError> {
    text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(IpNetwork::parse).collect()
}

/// Parses `LOW-HIGH` into an inclusive port range of at least two ports.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), ValueError> {
    let (low, high) = text.split_once('-').ok_or(ValueError::PortRange)?;
    let low: u16 = low.trim().parse().map_err(|_| ValueError::PortRange)?;
    let high: u16 = high.trim().parse().map_err(|_| ValueError::PortRange)?;
    if low < 1024 || high < low.saturating_add(1) {
        return Err(ValueError::PortRange);
    }
    Ok((low, high))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceConfig {
    /// How long an incoming call rings the presence sockets before it ends `no_answer`.
    pub ring_timeout_secs: u64,
    /// Record every call to `DIR/<call_id>.wav` (16 kHz stereo: the far end left, the agent
    /// right); unset = no recording.
    pub recordings_dir: Option<String>,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self { ring_timeout_secs: 30, recordings_dir: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Connections in the read pool (SQLite writes always use one dedicated connection).
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Longest SMS body accepted by `/sms/send`, in Unicode scalar values.
    pub max_sms_chars: usize,
    /// Longest `wait` a long-poll may ask for, in seconds.
    pub max_wait_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionsConfig {
    /// Name of the plan sold (reported by `/sms/number`).
    pub plan: String,
    /// Plan length in days.
    pub plan_days: u32,
    /// Days after expiry during which the wallet keeps its number and can renew it.
    pub grace_days: u32,
    /// Days a released number rests before another wallet can get it.
    pub quarantine_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Fictional numbers seeded into an empty pool at first start.
    pub seed_numbers: u32,
    /// Prefix of the seeded numbers; suffixes run from `0100` (NANP 555-01XX is fictional).
    pub number_prefix: String,
    /// Delay between `sent` and `delivered` on the simulated network, in milliseconds.
    pub delivery_delay_ms: u64,
    /// How long the simulated echo callee rings before it answers, in milliseconds.
    pub answer_delay_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmppConfig {
    /// `system_type` sent in the bind (often empty; some carriers require one).
    pub system_type: String,
    /// `transceiver` (one bind carries both directions) or `split` (a transmitter and a
    /// receiver bind per session).
    pub bind_mode: BindMode,
    /// Binds (or transmitter/receiver pairs) to open.
    pub sessions: u32,
    /// Requests outstanding per bind at most.
    pub window: u32,
    /// Message parts per second at most over all binds (the contracted TPS); 0 = uncapped.
    pub throughput: u32,
    /// How long a request waits for its response; silence is ambiguous and never resent.
    pub response_timeout_ms: u64,
    /// Idle keepalive interval.
    pub enquire_link_secs: u64,
    /// Longest wait between reconnection attempts (backoff starts at 1 s, with jitter).
    pub reconnect_max_secs: u64,
    /// First pause after `ESME_RTHROTTLED` / `ESME_RMSGQFUL`; doubles up to 60 s.
    pub throttle_pause_ms: u64,
}

impl Default for SmppConfig {
    fn default() -> Self {
        Self {
            system_type: String::new(),
            bind_mode: BindMode::Transceiver,
            sessions: 1,
            window: 64,
            throughput: 0,
            response_timeout_ms: 30_000,
            enquire_link_secs: 30,
            reconnect_max_secs: 60,
            throttle_pause_ms: 1000,
        }
    }
}

/// Where and as whom to bind, from `smpp_url`.
#[derive(Debug, Clone)]
pub struct SmppTarget {
    /// `host:port`.
    pub addr: String,
    /// The host alone, as the SMSC's certificate must name it (`smpps://`).
    pub host: String,
    /// `smpps://`: TLS over the TCP connection.
    pub tls: bool,
    pub system_id: String,
    pub password: Secret,
}

impl SmppTarget {
    /// Parses `smpp://SYSTEM_ID:PASSWORD@HOST:PORT` or `smpps://…` (user and password optional
    /// and percent-encoded; the port defaults to 2775, or 3550 over TLS).
    pub fn parse(url: &str) -> Result<Self, ValueError> {
        let (rest, tls) = match (url.strip_prefix("smpp://"), url.strip_prefix("smpps://")) {
            (Some(rest), _) => (rest, false),
            (None, Some(rest)) => (rest, true),
            (None, None) => return Err(ValueError::Scheme { expected: "smpp:// or smpps://" }),
        };
        let rest = rest.trim_end_matches('/');
        let (user, password, hostport) = split_userinfo(rest)?;
        if hostport.is_empty() || hostport.contains('/') {
            return Err(ValueError::Host);
        }
        let port = match hostport.strip_prefix('[') {
            Some(v6) => v6.split_once("]:").map(|(_, p)| p),
            None => hostport.rsplit_once(':').map(|(_, p)| p),
        };
        let addr = match port {
            Some(p) => {
                p.parse::<u16>().ok().filter(|&p| p > 0).ok_or(ValueError::Port)?;
                hostport.to_owned()
            }
            None if tls => format!("{hostport}:3550"),
            None => format!("{hostport}:2775"),
        };
        let host = match hostport.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map_or(v6, |(h, _)| h),
            None => port.map_or(hostport, |p| &hostport[..hostport.len() - p.len() - 1]),
        };
        // SMPP 3.4 §4.1: system_id at most 15 octets, password at most 8.
        if user.len() > 15 || password.len() > 8 {
            return Err(ValueError::CredentialsTooLong);
        }
        Ok(Self { addr, host: host.to_owned(), tls, system_id: user, password: Secret::new(password) })
    }
}

/// `USER:PASSWORD@HOSTPORT` → the percent-decoded user and password (empty when absent) and
/// what follows the last `@`.
fn split_userinfo(rest: &str) -> Result<(String, String, &str), ValueError> {
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (percent_decode(user)?, percent_decode(pass)?),
            None => (percent_decode(u)?, String::new()),
        },
        None => (String::new(), String::new()),
    };
    Ok((user, password, hostport))
}

fn percent_decode(s: &str) -> Result<String, ValueError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(ValueError::PercentEncoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ValueError::PercentEncoding)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ValueError::NotUtf8)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8402)),
            database_url: "sqlite://data/agentline.db".to_owned(),
            admin_key: None,
            public_url: None,
            service_name: "agentline".to_owned(),
            settlement: SettlementBackend::None,
            price: "1000000000".to_owned(),
            network: "base-sepolia".to_owned(),
            asset: None,
            pay_to: None,
            token_name: None,
            token_version: "2".to_owned(),
            rpc_url: None,
            relayer_key: None,
            facilitator_url: None,
            receipt_timeout_secs: 30,
            log: "info".to_owned(),
            database: DatabaseConfig::default(),
            limits: LimitsConfig::default(),
            subscriptions: SubscriptionsConfig::default(),
            sim: SimConfig::default(),
            smpp_url: None,
            smpp: SmppConfig::default(),
            voice: VoiceConfig::default(),
            sip: SipConfig::default(),
            rtp: RtpConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { max_connections: 8 }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { max_body_bytes: 64 * 1024, max_sms_chars: 1600, max_wait_secs: 30 }
    }
}

impl Default for SubscriptionsConfig {
    fn default() -> Self {
        Self { plan: "yearly".to_owned(), plan_days: 365, grace_days: 30, quarantine_days: 90 }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self { seed_numbers: 100, number_prefix: "+1202555".to_owned(), delivery_delay_ms: 200, answer_delay_ms: 300 }
    }
}

/// The type a key's environment value is parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Str,
    Int,
    Bool,
}

/// Every configuration key as a dotted path, with its type. The environment name is derived
/// by [`env_name`].
pub const KEYS: &[(&str, KeyKind)] = &[
    ("listen", KeyKind::Str),
    ("database_url", KeyKind::Str),
    ("admin_key", KeyKind::Str),
    ("public_url", KeyKind::Str),
    ("service_name", KeyKind::Str),
    ("settlement", KeyKind::Str),
    ("price", KeyKind::Str),
    ("network", KeyKind::Str),
    ("asset", KeyKind::Str),
    ("pay_to", KeyKind::Str),
    ("token_name", KeyKind::Str),
    ("token_version", KeyKind::Str),
    ("rpc_url", KeyKind::Str),
    ("relayer_key", KeyKind::Str),
    ("facilitator_url", KeyKind::Str),
    ("receipt_timeout_secs", KeyKind::Int),
    ("log", KeyKind::Str),
    ("database.max_connections", KeyKind::Int),
    ("limits.max_body_bytes", KeyKind::Int),
    ("limits.max_sms_chars", KeyKind::Int),
    ("limits.max_wait_secs", KeyKind::Int),
    ("subscriptions.plan", KeyKind::Str),
    ("subscriptions.plan_days", KeyKind::Int),
    ("subscriptions.grace_days", KeyKind::Int),
    ("subscriptions.quarantine_days", KeyKind::Int),
    ("sim.seed_numbers", KeyKind::Int),
    ("sim.number_prefix", KeyKind::Str),
    ("sim.delivery_delay_ms", KeyKind::Int),
    ("sim.answer_delay_ms", KeyKind::Int),
    ("voice.ring_timeout_secs", KeyKind::Int),
    ("voice.recordings_dir", KeyKind::Str),
    ("smpp_url", KeyKind::Str),
    ("smpp.system_type", KeyKind::Str),
    ("smpp.bind_mode", KeyKind::Str),
    ("smpp.sessions", KeyKind::Int),
    ("smpp.window", KeyKind::Int),
    ("smpp.throughput", KeyKind::Int),
    ("smpp.response_timeout_ms", KeyKind::Int),
    ("smpp.enquire_link_secs", KeyKind::Int),
    ("smpp.reconnect_max_secs", KeyKind::Int),
    ("smpp.throttle_pause_ms", KeyKind::Int),
    ("sip.trunk", KeyKind::Str),
    ("sip.listen", KeyKind::Str),
    ("sip.public_addr", KeyKind::Str),
    ("sip.register", KeyKind::Bool),
    ("sip.register_expires_secs", KeyKind::Int),
    ("sip.session_expires_secs", KeyKind::Int),
    ("sip.invite_timeout_secs", KeyKind::Int),
    ("sip.codecs", KeyKind::Str),
    ("sip.allow_private_endpoints", KeyKind::Bool),
    ("sip.carrier_networks", KeyKind::Str),
    ("rtp.ports", KeyKind::Str),
    ("rtp.jitter_ms", KeyKind::Int),
    ("tls.ca_file", KeyKind::Str),
];

/// `sim.seed_numbers` -> `AGENTLINE_SIM_SEED_NUMBERS`.
pub fn env_name(key: &str) -> String {
    format!("AGENTLINE_{}", key.replace('.', "_").to_ascii_uppercase())
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {source}")]
    Toml { path: String, source: toml::de::Error },
    #[error("environment variable {name} must be an integer, got {value:?}")]
    EnvNotInteger { name: String, value: String },
    #[error("environment variable {name} must be true or false, got {value:?}")]
    EnvNotBool { name: String, value: String },
    #[error("invalid configuration: {0}")]
    Invalid(#[from] toml::de::Error),
    /// A value outside what the key allows; `rule` says what it allows.
    #[error("{key}: {rule}")]
    Rule { key: &'static str, rule: &'static str },
    /// A value that does not parse as its key's syntax.
    #[error("{key}: {reason}")]
    Value { key: &'static str, reason: ValueError },
}

/// Why a structured value (a URL, a codec list, a port range, a network) does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("must start with {expected}")]
    Scheme { expected: &'static str },
    #[error("transport must be udp or tcp")]
    Transport,
    #[error("unknown parameter {param:?}")]
    UnknownParameter { param: String },
    #[error("port must be a number from 1 to 65535")]
    Port,
    #[error("needs a host (and optional port)")]
    Host,
    #[error("bad percent-encoding")]
    PercentEncoding,
    #[error("credentials must be UTF-8")]
    NotUtf8,
    /// SMPP 3.4 §4.1: system_id at most 15 octets, password at most 8.
    #[error("system_id may have at most 15 characters and the password 8")]
    CredentialsTooLong,
    #[error("unknown codec {name:?}: use G722, PCMU or PCMA")]
    UnknownCodec { name: String },
    #[error("{name} is listed twice")]
    DuplicateCodec { name: String },
    #[error("at least one codec")]
    NoCodec,
    #[error("{text:?} is not an IP network")]
    NotANetwork { text: String },
    #[error("{text:?}: bad prefix length")]
    PrefixLength { text: String },
    #[error("must be LOW-HIGH with 1024 <= LOW < HIGH")]
    PortRange,
}

/// Where settlements happen (`settlement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettlementBackend {
    /// The sandbox: signatures fully verified, nothing moves.
    #[default]
    None,
    /// The operator's relayer submits `transferWithAuthorization` over `rpc_url`.
    Chain,
    /// An x402 facilitator's `/verify` + `/settle` at `facilitator_url`.
    Facilitator,
}

/// How an SMPP session binds (`smpp.bind_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindMode {
    /// One bind carries both directions.
    #[default]
    Transceiver,
    /// A transmitter and a receiver bind per session.
    Split,
}

impl Config {
    /// Reads the optional file, applies the `AGENTLINE_*` variables found in `env`, validates.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
                text.parse::<toml::Table>()
                    .map_err(|source| ConfigError::Toml { path: path.display().to_string(), source })?
            }
            None => toml::Table::new(),
        };
        for &(key, kind) in KEYS {
            let name = env_name(key);
            let Some(raw) = env.get(&name) else { continue };
            let value = match kind {
                KeyKind::Str => toml::Value::String(raw.clone()),
                KeyKind::Int => toml::Value::Integer(
                    raw.trim()
                        .parse()
                        .map_err(|_| ConfigError::EnvNotInteger { name: name.clone(), value: raw.clone() })?,
                ),
                KeyKind::Bool => toml::Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(ConfigError::EnvNotBool { name: name.clone(), value: raw.clone() }),
                }),
            };
            set_path(&mut table, key, value);
        }
        let config: Config = toml::Value::Table(table).try_into()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, rule| Err(ConfigError::Rule { key, rule });
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres:")
            || self.database_url.starts_with("postgresql:"))
        {
            return bad("database_url", "must start with sqlite: or postgres:");
        }
        if self.admin_key.as_ref().is_some_and(|k| k.expose().len() < 16) {
            return bad("admin_key", "must be at least 16 characters");
        }
        if self.public_url.as_ref().is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
            return bad("public_url", "must be an absolute http:// or https:// URL");
        }
        match self.settlement {
            SettlementBackend::None => {}
            SettlementBackend::Chain => {
                if self.rpc_url.is_none() || self.relayer_key.is_none() || self.pay_to.is_none() {
                    return bad("settlement", "chain needs rpc_url, relayer_key and pay_to");
                }
            }
            SettlementBackend::Facilitator => {
                if self.facilitator_url.is_none() || self.pay_to.is_none() {
                    return bad("settlement", "facilitator needs facilitator_url and pay_to");
                }
            }
        }
        if self.database.max_connections == 0 {
            return bad("database.max_connections", "must be at least 1");
        }
        if self.limits.max_body_bytes < 1024 {
            return bad("limits.max_body_bytes", "must be at least 1024");
        }
        if self.limits.max_sms_chars == 0 {
            return bad("limits.max_sms_chars", "must be at least 1");
        }
        if self.subscriptions.plan_days == 0 {
            return bad("subscriptions.plan_days", "must be at least 1");
        }
        let prefix_ok = self.sim.number_prefix.len() + 4 <= E164::MAX_DIGITS + 1
            && E164::parse(&format!("{}0100", self.sim.number_prefix)).is_ok();
        if !prefix_ok {
            return bad("sim.number_prefix", "prefix + 4 digits must be a valid E.164 number");
        }
        if self.sim.seed_numbers > 9900 {
            return bad("sim.seed_numbers", "at most 9900 (suffixes 0100..9999)");
        }
        if let Some(url) = &self.smpp_url {
            SmppTarget::parse(url.expose()).map_err(|reason| ConfigError::Value { key: "smpp_url", reason })?;
        }
        if let Some(trunk) = &self.sip.trunk {
            SipTrunk::parse(trunk.expose()).map_err(|reason| ConfigError::Value { key: "sip.trunk", reason })?;
        }
        if self.sip.listen.parse::<SocketAddr>().is_err() {
            return bad("sip.listen", "must be IP:PORT");
        }
        if let Some(addr) = &self.sip.public_addr
            && addr.parse::<std::net::IpAddr>().is_err()
            && addr.parse::<SocketAddr>().is_err()
        {
            return bad("sip.public_addr", "must be an IP address, optionally with :PORT");
        }
        parse_port_range(&self.rtp.ports).map_err(|reason| ConfigError::Value { key: "rtp.ports", reason })?;
        if !(20..=160).contains(&self.rtp.jitter_ms) || !self.rtp.jitter_ms.is_multiple_of(20) {
            return bad("rtp.jitter_ms", "must be a multiple of 20 from 20 to 160");
        }
        if self.sip.register_expires_secs < 60 {
            return bad("sip.register_expires_secs", "must be at least 60");
        }
        if self.sip.session_expires_secs != 0 && self.sip.session_expires_secs < 90 {
            return bad("sip.session_expires_secs", "must be 0 (off) or at least 90 (RFC 4028 Min-SE)");
        }
        parse_codecs(&self.sip.codecs).map_err(|reason| ConfigError::Value { key: "sip.codecs", reason })?;
        parse_networks(&self.sip.carrier_networks)
            .map_err(|reason| ConfigError::Value { key: "sip.carrier_networks", reason })?;
        if !(1..=170).contains(&self.sip.invite_timeout_secs) {
            return bad("sip.invite_timeout_secs", "must be from 1 to 170 (an INVITE transaction lives 180 s)");
        }
        if !(1..=600).contains(&self.voice.ring_timeout_secs) {
            return bad("voice.ring_timeout_secs", "must be from 1 to 600");
        }
        if !(1..=16).contains(&self.smpp.sessions) {
            return bad("smpp.sessions", "must be from 1 to 16");
        }
        if !(1..=10_000).contains(&self.smpp.window) {
            return bad("smpp.window", "must be from 1 to 10000");
        }
        if self.smpp.response_timeout_ms < 100 || self.smpp.enquire_link_secs == 0 || self.smpp.reconnect_max_secs == 0
        {
            return bad("smpp", "response_timeout_ms must be at least 100, the others at least 1");
        }
        if self.smpp.system_type.len() > 12 {
            return bad("smpp.system_type", "at most 12 characters");
        }
        Ok(())
    }

    /// The base URL used to build absolute links (`stream_url`, OpenAPI `servers`).
    pub fn public_base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_owned(), value);
        }
        Some((section, rest)) => {
            let entry = table.entry(section.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::load(None, &HashMap::new()).expect("defaults valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8402");
        assert!(c.database_url.starts_with("sqlite://data/"));
        assert!(c.admin_key.is_none());
        assert_eq!(c.public_base_url(), "http://127.0.0.1:8402");
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agentline.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\n[sim]\nseed_numbers = 5\n").expect("write");
        let c = Config::load(
            Some(&path),
            &env(&[
                ("AGENTLINE_SIM_SEED_NUMBERS", "7"),
                ("AGENTLINE_ADMIN_KEY", "0123456789abcdef-admin"),
                ("AGENTLINE_PUBLIC_URL", "https://agentline.example/"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.sim.seed_numbers, 7);
        assert_eq!(c.admin_key.as_ref().map(Secret::expose), Some("0123456789abcdef-admin"));
        assert!(!format!("{c:?}").contains("0123456789abcdef-admin"), "secrets never in Debug");
        assert_eq!(c.public_base_url(), "https://agentline.example");
    }

    #[test]
    fn every_field_has_an_environment_key() {
        let default = toml::Value::try_from(Config {
            admin_key: Some(Secret::new("x".repeat(16))),
            public_url: Some("http://x".to_owned()),
            asset: Some("0x0000000000000000000000000000000000000001".to_owned()),
            pay_to: Some("0x0000000000000000000000000000000000000002".to_owned()),
            token_name: Some("T".to_owned()),
            rpc_url: Some("http://x".to_owned()),
            relayer_key: Some(Secret::new("k")),
            facilitator_url: Some("http://x".to_owned()),
            smpp_url: Some(Secret::new("smpp://a:b@h:1")),
            sip: SipConfig {
                trunk: Some(Secret::new("sip:h")),
                public_addr: Some("192.0.2.1".to_owned()),
                ..SipConfig::default()
            },
            voice: VoiceConfig { recordings_dir: Some("/tmp".to_owned()), ..VoiceConfig::default() },
            tls: TlsConfig { ca_file: Some("/ca.pem".to_owned()) },
            ..Config::default()
        })
        .expect("serializes");
        let mut leaves = Vec::new();
        collect_leaves(&default, "", &mut leaves);
        let keys: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
        for leaf in &leaves {
            assert!(keys.contains(&leaf.as_str()), "{leaf} missing from KEYS");
        }
        assert_eq!(leaves.len(), KEYS.len());
    }

    fn collect_leaves(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    collect_leaves(v, &path, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }

    #[test]
    fn rejects_bad_values() {
        for (k, v) in [
            ("AGENTLINE_DATABASE_URL", "mysql://x"),
            ("AGENTLINE_ADMIN_KEY", "short"),
            ("AGENTLINE_LISTEN", "not-an-addr"),
            ("AGENTLINE_SIM_SEED_NUMBERS", "many"),
            ("AGENTLINE_SIM_NUMBER_PREFIX", "1202555"),
            ("AGENTLINE_PUBLIC_URL", "agentline.example"),
        ] {
            assert!(Config::load(None, &env(&[(k, v)])).is_err(), "{k}={v} accepted");
        }
    }

    #[test]
    fn smpp_urls() {
        let t = SmppTarget::parse("smpp://agent:s%40cret@127.0.0.1:2775").expect("valid");
        assert_eq!((t.addr.as_str(), t.system_id.as_str(), t.password.expose()), ("127.0.0.1:2775", "agent", "s@cret"));
        let t = SmppTarget::parse("smpp://smsc.example.net").expect("valid");
        assert_eq!((t.addr.as_str(), t.system_id.as_str()), ("smsc.example.net:2775", ""));
        assert_eq!(SmppTarget::parse("smpp://u@[::1]:9000").expect("valid").addr, "[::1]:9000");
        let t = SmppTarget::parse("smpps://u:p@smsc.example.net").expect("valid");
        assert_eq!((t.addr.as_str(), t.host.as_str(), t.tls), ("smsc.example.net:3550", "smsc.example.net", true));
        let t = SmppTarget::parse("smpps://u@[::1]:9000").expect("valid");
        assert_eq!((t.host.as_str(), t.tls), ("::1", true));
        assert!(!SmppTarget::parse("smpp://h:1").expect("valid").tls);
        assert!(SmppTarget::parse("smppx://h:1").is_err());
        for bad in [
            "http://h:1",
            "smpp://",
            "smpp://u:p@h:0",
            "smpp://u:p@h:x",
            "smpp://u:%zz@h",
            "smpp://h/x",
            "smpp://a_very_long_system_id:p@h",
            "smpp://u:123456789@h",
        ] {
            assert!(SmppTarget::parse(bad).is_err(), "{bad}");
        }
        let env = HashMap::from([("AGENTLINE_SMPP_URL".to_owned(), "smpp://u:p@h:1".to_owned())]);
        let c = Config::load(None, &env).expect("valid");
        assert!(c.smpp_url.is_some());
        assert!(!format!("{c:?}").contains("u:p@"), "the URL carries the password: never in Debug");
        let env = HashMap::from([("AGENTLINE_SMPP_WINDOW".to_owned(), "0".to_owned())]);
        assert!(Config::load(None, &env).is_err());
    }

    #[test]
    fn sip_trunks() {
        let t = SipTrunk::parse("sip:agent:s%40cret@trunk.example:5070;transport=tcp").expect("valid");
        assert_eq!((t.host.as_str(), t.port, t.tcp, t.user.as_str()), ("trunk.example", 5070, true, "agent"));
        assert_eq!(t.password.expose(), "s@cret");
        let t = SipTrunk::parse("sip:192.0.2.7").expect("valid");
        assert_eq!((t.host.as_str(), t.port, t.tcp, t.user.as_str()), ("192.0.2.7", 5060, false, ""));
        let t = SipTrunk::parse("sip:[2001:db8::1]:5080").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("2001:db8::1", 5080));
        for bad in ["trunk.example", "sip:", "sip:h:0", "sip:h:x", "sip:h;transport=sctp", "sip:h;foo=1"] {
            assert!(SipTrunk::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_port_range("30000-30999"), Ok((30000, 30999)));
        for bad in ["30000", "30000-30000", "80-90", "a-b", "40000-30000"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
        let env = HashMap::from([
            ("AGENTLINE_SIP_TRUNK".to_owned(), "sip:u:pw@127.0.0.1:5090".to_owned()),
            ("AGENTLINE_SIP_REGISTER".to_owned(), "true".to_owned()),
            ("AGENTLINE_RTP_PORTS".to_owned(), "40000-40100".to_owned()),
        ]);
        let c = Config::load(None, &env).expect("valid");
        assert!(c.sip.register);
        assert_eq!(c.rtp.ports, "40000-40100");
        assert!(!format!("{c:?}").contains("u:pw@"), "the trunk URI carries the password: never in Debug");
        let env = HashMap::from([("AGENTLINE_SIP_REGISTER".to_owned(), "maybe".to_owned())]);
        assert!(matches!(Config::load(None, &env), Err(ConfigError::EnvNotBool { .. })));
        let env = HashMap::from([("AGENTLINE_RTP_PORTS".to_owned(), "5-4".to_owned())]);
        assert!(Config::load(None, &env).is_err());
    }
}

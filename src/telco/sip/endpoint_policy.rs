//! Where an agent may make this service send SIP: the endpoint policy of `dial_uri` and of the
//! inbound SIP endpoint an agent registers (`PUT /sms/voice/inbound`).
//!
//! Owns the rules, typed: the URI's syntax and scheme ([`check_endpoint_uri`]), its transport,
//! that its host resolves to a public address unless private ones are allowed
//! ([`resolve_endpoint`]), and that it is neither the carrier nor this service
//! ([`Carrier::refuses`]): calling the carrier directly would place PSTN calls outside the dial
//! path, and an agent must not make the server call into its own network (SSRF). [`Cidr`] is the
//! carrier's declared networks (`carrier_networks` in the config).
//!
//! What this module must not do: keep state, send anything, or decide about dialogs; the only
//! I/O is the name lookup of [`resolve_endpoint`], bounded by [`RESOLVE_TIMEOUT`]. Every refusal
//! is an [`EndpointError`] whose text is the message an agent sees.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::message::{Scheme, Uri};
use super::transaction::{Peer, Transport as Kind};
use crate::telco::is_public;

/// Longest SIP URI an agent may give us.
pub const MAX_URI_LEN: usize = 512;
/// How long a URI's host may take to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// The port of a `sip:` URI that names none (RFC 3261 §19.1.2).
const DEFAULT_SIP_PORT: u16 = 5060;

/// Why an agent's SIP endpoint is refused. The text is for the agent (it ends up in a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the SIP URI is longer than {MAX_URI_LEN} characters")]
    TooLong,
    #[error("not a valid SIP URI (sip:user@host[:port][;transport=udp|tcp])")]
    Malformed,
    #[error("sips: (TLS) is not supported yet; use sip:")]
    SipsUnsupported,
    #[error("a tel: URI is a phone number: dial it with `to`")]
    TelUri,
    #[error("the SIP URI needs a host")]
    NoHost,
    #[error("the SIP URI's transport must be udp or tcp (TLS is not supported yet)")]
    UnsupportedTransport,
    #[error("the SIP URI's host did not resolve in time")]
    ResolveTimeout,
    #[error("the SIP URI's host does not resolve")]
    DoesNotResolve,
    #[error("the SIP URI's host is not a public address")]
    NotPublic,
    #[error("the SIP URI points at the carrier or at this service; dial phone numbers with `to`")]
    CarrierOrSelf,
}

/// Why a `carrier_networks` entry is not an IP network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{text:?} is not an IP network")]
    NotAnAddress { text: String },
    #[error("{text:?}: bad prefix length")]
    BadPrefix { text: String },
}

/// Syntax and scheme of an agent's SIP URI (no resolution): what `PUT /sms/voice/inbound` checks.
pub fn check_endpoint_uri(text: &str) -> Result<Uri, EndpointError> {
    if text.len() > MAX_URI_LEN {
        return Err(EndpointError::TooLong);
    }
    let uri = Uri::parse(text).map_err(|_| EndpointError::Malformed)?;
    match uri.scheme {
        Scheme::Sip => {}
        Scheme::Sips => return Err(EndpointError::SipsUnsupported),
        Scheme::Tel => return Err(EndpointError::TelUri),
    }
    if uri.host.is_empty() {
        return Err(EndpointError::NoHost);
    }
    Ok(uri)
}

/// The transport a checked URI asks for: `udp` (the default) or `tcp`.
pub fn endpoint_transport(uri: &Uri) -> Result<Kind, EndpointError> {
    match uri.transport().map(str::to_ascii_lowercase).as_deref() {
        None | Some("udp") => Ok(Kind::Udp),
        Some("tcp") => Ok(Kind::Tcp),
        Some(_) => Err(EndpointError::UnsupportedTransport),
    }
}

/// The first acceptable address among those a host resolved to: any when private addresses are
/// allowed, else the first public one (loopback, private, link-local, CGNAT and multicast are not).
pub fn pick_address(
    addrs: impl IntoIterator<Item = SocketAddr>,
    allow_private: bool,
) -> Result<SocketAddr, EndpointError> {
    let mut refused = false;
    for addr in addrs {
        if allow_private || is_public(addr.ip()) {
            return Ok(addr);
        }
        refused = true;
    }
    Err(if refused { EndpointError::NotPublic } else { EndpointError::DoesNotResolve })
}

/// Checks an agent's SIP URI and resolves where to send its INVITE. Refused: other schemes,
/// TLS (not supported yet), user-less or malformed URIs, and, unless allowed, addresses that
/// are not public: an agent must not be able to make the server call into its own network.
pub async fn resolve_endpoint(text: &str, allow_private: bool) -> Result<(Uri, Peer), EndpointError> {
    let uri = check_endpoint_uri(text)?;
    let transport = endpoint_transport(&uri)?;
    let host = uri.host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port.unwrap_or(DEFAULT_SIP_PORT);
    let addrs = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
        .await
        .map_err(|_| EndpointError::ResolveTimeout)?
        .map_err(|_| EndpointError::DoesNotResolve)?;
    let addr = pick_address(addrs, allow_private)?;
    Ok((uri, Peer { addr, transport }))
}

/// An IP network, `203.0.113.0/24` or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX` or a bare address.
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let (addr, prefix) = text.trim().split_once('/').unwrap_or((text.trim(), ""));
        let network: IpAddr = addr.parse().map_err(|_| CidrError::NotAnAddress { text: text.to_owned() })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| CidrError::BadPrefix { text: text.to_owned() })?
        };
        Ok(Self { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Where the carrier is: the trunk host's addresses and its declared networks. Agents' SIP
/// endpoints may not be there, and only from there are INVITEs taken.
#[derive(Debug, Clone)]
pub struct Carrier {
    pub trunk: Vec<IpAddr>,
    pub networks: Vec<Cidr>,
}

impl Carrier {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.trunk.contains(&ip) || self.networks.iter().any(|n| n.contains(ip))
    }

    /// Refuses a resolved endpoint that is the carrier (at `trunk_port`) or this service
    /// (`ours`: our public and local signalling addresses). On loopback/private networks (tests,
    /// a PBX next to us), when private endpoints are allowed, the carrier and the agent may share
    /// an address: there only the carrier's exact signalling address is refused.
    pub fn refuses(
        &self,
        peer: SocketAddr,
        trunk_port: u16,
        ours: &[SocketAddr],
        allow_private: bool,
    ) -> Result<(), EndpointError> {
        let shared_host = allow_private && !is_public(peer.ip());
        let is_carrier = if shared_host {
            self.trunk.iter().any(|ip| SocketAddr::new(*ip, trunk_port) == peer)
        } else {
            self.contains(peer.ip())
        };
        if is_carrier || ours.contains(&peer) {
            return Err(EndpointError::CarrierOrSelf);
        }
        Ok(())
    }
}

/// Where a dialog's in-dialog requests may go when the far end names an IP host: an agent's
/// endpoint (`to_trunk` false) may not redirect our requests to a non-public address unless
/// private endpoints are allowed; the trunk may.
pub fn may_target(ip: IpAddr, to_trunk: bool, allow_private: bool) -> bool {
    to_trunk || allow_private || is_public(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn uri_checks_name_each_refusal() {
        assert_eq!(check_endpoint_uri(&format!("sip:a@{}", "h".repeat(600))), Err(EndpointError::TooLong));
        assert_eq!(check_endpoint_uri("not a uri"), Err(EndpointError::Malformed));
        assert_eq!(check_endpoint_uri("sips:bob@example.com"), Err(EndpointError::SipsUnsupported));
        assert_eq!(check_endpoint_uri("tel:+14155550123"), Err(EndpointError::TelUri));
        let uri = check_endpoint_uri("sip:bob@example.com:5070;transport=tcp").expect("valid");
        assert_eq!((uri.host.as_str(), uri.port), ("example.com", Some(5070)));
        assert_eq!(endpoint_transport(&uri), Ok(Kind::Tcp));
        let tls = check_endpoint_uri("sip:bob@example.com;transport=tls").expect("valid syntax");
        assert_eq!(endpoint_transport(&tls), Err(EndpointError::UnsupportedTransport));
        assert_eq!(endpoint_transport(&check_endpoint_uri("sip:bob@example.com").expect("valid")), Ok(Kind::Udp));
    }

    #[test]
    fn messages_are_the_ones_agents_saw_before() {
        assert_eq!(EndpointError::TelUri.to_string(), "a tel: URI is a phone number: dial it with `to`");
        assert_eq!(EndpointError::TooLong.to_string(), "the SIP URI is longer than 512 characters");
        assert_eq!(
            EndpointError::CarrierOrSelf.to_string(),
            "the SIP URI points at the carrier or at this service; dial phone numbers with `to`"
        );
    }

    #[test]
    fn only_public_addresses_unless_private_allowed() {
        let private = [addr("10.0.0.1:5060"), addr("127.0.0.1:5060")];
        assert_eq!(pick_address(private, false), Err(EndpointError::NotPublic));
        assert_eq!(pick_address(private, true), Ok(private[0]));
        assert_eq!(pick_address([], true), Err(EndpointError::DoesNotResolve));
        let mixed = [addr("192.168.1.2:5060"), addr("8.8.8.8:5060")];
        assert_eq!(pick_address(mixed, false), Ok(mixed[1]));
    }

    #[tokio::test]
    async fn resolving_a_literal_applies_the_address_rule() {
        assert_eq!(resolve_endpoint("sip:bob@127.0.0.1:5099", false).await, Err(EndpointError::NotPublic));
        let (uri, peer) = resolve_endpoint("sip:bob@127.0.0.1:5099", true).await.expect("allowed");
        assert_eq!((uri.port, peer.addr, peer.transport), (Some(5099), addr("127.0.0.1:5099"), Kind::Udp));
    }

    #[test]
    fn cidrs() {
        let net = Cidr::parse("203.0.113.0/24").expect("valid");
        assert!(net.contains("203.0.113.77".parse().expect("ip")));
        assert!(!net.contains("203.0.114.1".parse().expect("ip")));
        assert!(!net.contains("::1".parse().expect("ip")));
        let one = Cidr::parse(" 2001:db8::1 ").expect("valid");
        assert_eq!(one.prefix, 128);
        assert!(Cidr::parse("0.0.0.0/0").expect("valid").contains("8.8.8.8".parse().expect("ip")));
        assert_eq!(Cidr::parse("nope/8"), Err(CidrError::NotAnAddress { text: "nope/8".to_owned() }));
        assert_eq!(Cidr::parse("10.0.0.0/33"), Err(CidrError::BadPrefix { text: "10.0.0.0/33".to_owned() }));
        assert_eq!(
            Cidr::parse("10.0.0.0/33").map_err(|e| e.to_string()),
            Err("\"10.0.0.0/33\": bad prefix length".into())
        );
    }

    #[test]
    fn the_carrier_and_this_service_are_refused() {
        let carrier = Carrier {
            trunk: vec!["198.51.100.7".parse().expect("ip")],
            networks: vec![Cidr::parse("192.76.120.0/24").expect("valid")],
        };
        let ours = [addr("203.0.113.10:5060")];
        let refuse = |peer: &str, allow_private| carrier.refuses(addr(peer), 5060, &ours, allow_private);
        assert_eq!(refuse("198.51.100.7:5070", false), Err(EndpointError::CarrierOrSelf));
        assert_eq!(refuse("192.76.120.99:5060", false), Err(EndpointError::CarrierOrSelf));
        assert_eq!(refuse("203.0.113.10:5060", false), Err(EndpointError::CarrierOrSelf));
        assert_eq!(refuse("8.8.8.8:5060", false), Ok(()));
        // A shared private host: only the trunk's exact signalling address is the carrier.
        let carrier = Carrier { trunk: vec!["127.0.0.1".parse().expect("ip")], networks: Vec::new() };
        assert_eq!(carrier.refuses(addr("127.0.0.1:5060"), 5060, &[], true), Err(EndpointError::CarrierOrSelf));
        assert_eq!(carrier.refuses(addr("127.0.0.1:5080"), 5060, &[], true), Ok(()));
    }

    #[test]
    fn in_dialog_targets() {
        let private: IpAddr = "10.1.2.3".parse().expect("ip");
        assert!(!may_target(private, false, false));
        assert!(may_target(private, true, false));
        assert!(may_target(private, false, true));
        assert!(may_target("8.8.8.8".parse().expect("ip"), false, false));
    }
}

//! What we charge and where: network, asset, payee, price, and the token's EIP-712 domain, as
//! configured. Everything the 402 challenge states and every verification compares against
//! comes from here, never from what a client echoes back.

use alloy_primitives::U256;

use crate::wallet::{Address, TokenDomain};

/// Base mainnet and Base Sepolia USDC, the defaults for those networks.
pub const BASE_USDC: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
pub const BASE_SEPOLIA_USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

/// An EVM network, named both ways x402 names it: CAIP-2 (`eip155:8453`, v2) and, where one
/// exists, the v1 name (`base`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub chain_id: u64,
}

/// v1 network names and chain ids, as the official clients know them.
const V1_NAMES: &[(&str, u64)] = &[
    ("base", 8453),
    ("base-sepolia", 84532),
    ("ethereum", 1),
    ("sepolia", 11_155_111),
    ("avalanche", 43114),
    ("avalanche-fuji", 43113),
    ("polygon", 137),
    ("polygon-amoy", 80002),
    ("iotex", 4689),
    ("sei", 1329),
    ("sei-testnet", 1328),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network must be base, base-sepolia, another x402 v1 name, or eip155:<chain id>; got {0:?}")]
pub struct NetworkError(pub String);

impl Network {
    pub fn parse(s: &str) -> Result<Self, NetworkError> {
        if let Some(id) = s.strip_prefix("eip155:") {
            let chain_id = id.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| NetworkError(s.to_owned()))?;
            return Ok(Self { chain_id });
        }
        V1_NAMES
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, chain_id)| Self { chain_id: *chain_id })
            .ok_or_else(|| NetworkError(s.to_owned()))
    }

    pub fn caip2(&self) -> String {
        format!("eip155:{}", self.chain_id)
    }

    pub fn v1_name(&self) -> Option<&'static str> {
        V1_NAMES.iter().find(|(_, id)| *id == self.chain_id).map(|(name, _)| *name)
    }

    /// Whether a client's network string names this network (either form).
    pub fn matches(&self, s: &str) -> bool {
        Network::parse(s).is_ok_and(|n| n == *self)
    }

    /// The USDC contract and its EIP-712 name on the networks whose USDC we know.
    pub fn default_usdc(&self) -> Option<(&'static str, &'static str)> {
        match self.chain_id {
            8453 => Some((BASE_USDC, "USD Coin")),
            84532 => Some((BASE_SEPOLIA_USDC, "USDC")),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentTerms {
    pub network: Network,
    pub asset: Address,
    pub pay_to: Address,
    /// Price of one plan, in the asset's atomic units.
    pub price: U256,
    pub token_name: String,
    pub token_version: String,
    /// How long a client may take between the challenge and paying.
    pub max_timeout_secs: u64,
    /// Absolute URL of the paid resource, for the challenge.
    pub resource_url: String,
    pub description: String,
}

impl PaymentTerms {
    pub fn domain(&self) -> TokenDomain {
        TokenDomain {
            name: self.token_name.clone(),
            version: self.token_version.clone(),
            chain_id: self.network.chain_id,
            verifying_contract: self.asset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_both_ways() {
        let base = Network::parse("base").expect("base");
        assert_eq!(base, Network::parse("eip155:8453").expect("caip2"));
        assert_eq!(base.caip2(), "eip155:8453");
        assert_eq!(base.v1_name(), Some("base"));
        assert!(base.matches("eip155:8453") && base.matches("base") && !base.matches("base-sepolia"));
        assert_eq!(Network::parse("eip155:31337").expect("local").v1_name(), None);
        for bad in ["", "eip155:", "eip155:0", "eip155:x", "solana", "Base"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(base.default_usdc().map(|(_, name)| name), Some("USD Coin"));
        assert_eq!(Network::parse("base-sepolia").expect("n").default_usdc().map(|(_, n)| n), Some("USDC"));
    }
}

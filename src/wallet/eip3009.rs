//! EIP-3009 `TransferWithAuthorization` under EIP-712: the digest a payer signs and the token
//! contract checks. The domain is always built from our configuration, never from what a
//! client echoes back (a wrong token name passes an off-chain check that reuses the client's
//! domain and then fails on chain).

use alloy_primitives::{B256, U256};
use alloy_sol_types::{Eip712Domain, SolStruct, sol};

use super::Address;

sol! {
    /// `TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)`
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// The token's EIP-712 domain: `name()`/`version()` of the token, the chain, the token address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDomain {
    pub name: String,
    pub version: String,
    pub chain_id: u64,
    pub verifying_contract: Address,
}

/// The signed fields of an EIP-3009 authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub from: Address,
    pub to: Address,
    pub value: U256,
    pub valid_after: U256,
    pub valid_before: U256,
    pub nonce: B256,
}

/// The EIP-712 signing hash of `auth` under `domain`.
pub fn authorization_hash(domain: &TokenDomain, auth: &Authorization) -> B256 {
    let domain = Eip712Domain::new(
        Some(domain.name.clone().into()),
        Some(domain.version.clone().into()),
        Some(U256::from(domain.chain_id)),
        Some(domain.verifying_contract.into()),
        None,
    );
    TransferWithAuthorization {
        from: auth.from.into(),
        to: auth.to.into(),
        value: auth.value,
        validAfter: auth.valid_after,
        validBefore: auth.valid_before,
        nonce: auth.nonce,
    }
    .eip712_signing_hash(&domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet::{parse_signature, recover_prehash};

    /// Captured from `@x402/fetch` + `@x402/evm` 2.27.0 (shared/reference/payments-x402.md §1.4):
    /// Base mainnet USDC domain, signed by the `from` below.
    #[test]
    fn recovers_the_payer_of_an_official_client_signature() {
        let domain = TokenDomain {
            name: "USD Coin".to_owned(),
            version: "2".to_owned(),
            chain_id: 8453,
            verifying_contract: Address::parse("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913").expect("addr"),
        };
        let auth = Authorization {
            from: Address::parse("0x77943b1693989eDF61E79172D29DC95b15bFA905").expect("addr"),
            to: Address::parse("0xEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE").expect("addr"),
            value: U256::from(1_000_000u64),
            valid_after: U256::ZERO,
            valid_before: U256::from(1_795_374_653u64),
            nonce: "0x9cd52012f8ad3e6d19801ed7dd025e64919265743658264be1db5875ece4561e".parse().expect("nonce"),
        };
        let sig = parse_signature("0xed6247005319afb40c2870a0ef41e03de917be4a3d7db5e3b12b08b0926ab51318b47ff8dd5a54ab0fd3725ed5bf90bc17f86e9e00777516f83b3e03aab65bbe1b").expect("sig");
        let hash = authorization_hash(&domain, &auth);
        assert_eq!(recover_prehash(&sig, &hash).expect("recovers"), auth.from);

        // The wrong token name ("USDC" on Base mainnet) recovers someone else.
        let wrong = TokenDomain { name: "USDC".to_owned(), ..domain };
        assert_ne!(recover_prehash(&sig, &authorization_hash(&wrong, &auth)).ok(), Some(auth.from));
    }
}

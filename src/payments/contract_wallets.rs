//! ERC-1271 signature checks for contract wallets (smart accounts): a wallet that is a
//! contract cannot produce an ECDSA signature of its own, so we ask it,
//! `isValidSignature(hash, signature) == 0x1626ba7e`. Used by token recovery when an RPC is
//! configured.

use std::time::Duration;

use alloy_primitives::{B256, Bytes, FixedBytes};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::{SolCall, sol};

use crate::wallet::Address;

sol! {
    function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4);
}

/// The ERC-1271 magic value.
const MAGIC: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];
/// Longest contract-wallet signature accepted, bytes.
pub const MAX_CONTRACT_SIGNATURE_BYTES: usize = 2048;

pub struct ContractWallets {
    provider: DynProvider,
    timeout: Duration,
}

impl ContractWallets {
    pub fn new(rpc_url: &str, http: reqwest::Client, timeout: Duration) -> Option<Self> {
        let url = rpc_url.parse().ok()?;
        let provider = ProviderBuilder::new().disable_recommended_fillers().connect_reqwest(http, url).erased();
        Some(Self { provider, timeout })
    }

    /// Whether the contract at `wallet` accepts `signature` for `hash`. A wallet without code,
    /// a revert, or no answer in time all count as no.
    pub async fn is_valid_signature(&self, wallet: Address, hash: B256, signature: &[u8]) -> bool {
        if signature.len() > MAX_CONTRACT_SIGNATURE_BYTES {
            return false;
        }
        let call = isValidSignatureCall { hash, signature: Bytes::copy_from_slice(signature) };
        let wallet: alloy_primitives::Address = wallet.into();
        let tx = TransactionRequest::default().to(wallet).input(Bytes::from(call.abi_encode()).into());
        let Ok(Ok(out)) = tokio::time::timeout(self.timeout, self.provider.call(tx)).await else {
            return false;
        };
        isValidSignatureCall::abi_decode_returns(&out).is_ok_and(|magic: FixedBytes<4>| magic.0 == MAGIC)
    }
}

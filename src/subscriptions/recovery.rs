//! Token recovery with the wallet (EIP-191 `personal_sign`): a single-use nonce valid for
//! 300 s, the exact message to sign (naming this service), and on success a fresh token with
//! every older token of the wallet revoked.

use rand::Rng;

use super::{SubscriptionService, Token};
use crate::clock;
use crate::wallet::{Address, parse_signature, recover_personal};

pub const NONCE_TTL_SECS: i64 = 300;

#[derive(Debug, Clone)]
pub struct IssuedNonce {
    pub nonce: String,
    pub expires_in: i64,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Recovered {
    pub token: Token,
    pub number: String,
    pub expires_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("{0}")]
    BadRequest(String),
    #[error("nonce unknown, already used, or expired; request a new one")]
    BadNonce,
    #[error("signature did not recover the claimed wallet")]
    SignatureMismatch,
    #[error("no active subscription for this wallet")]
    NoSubscription,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl SubscriptionService {
    /// ERC-1271: a contract wallet vouches for the signature (only with an RPC configured).
    async fn signed_by_contract_wallet(&self, wallet: Address, message: &str, signature: &str) -> bool {
        let Some(wallets) = &self.payments.contract_wallets else { return false };
        let Some(hex) = signature.strip_prefix("0x") else { return false };
        if hex.len() > 2 * crate::payments::contract_wallets::MAX_CONTRACT_SIGNATURE_BYTES {
            return false;
        }
        let Ok(bytes) = alloy_primitives::hex::decode(hex) else { return false };
        let hash = alloy_primitives::eip191_hash_message(message.as_bytes());
        wallets.is_valid_signature(wallet, hash, &bytes).await
    }

    /// The message a wallet signs to recover its token.
    pub fn sign_in_message(&self, nonce: &str) -> String {
        format!("Sign in to {}\nNonce: {nonce}", self.service_name)
    }

    pub async fn issue_nonce(&self, address: Option<&str>) -> Result<IssuedNonce, RecoveryError> {
        let address = match address {
            Some(a) => Some(Address::parse(a).map_err(|e| RecoveryError::BadRequest(format!("address: {e}")))?),
            None => None,
        };
        let mut nonce = String::with_capacity(34);
        nonce.push_str("n_");
        let bytes: [u8; 16] = rand::rng().random();
        for b in bytes {
            nonce.push_str(&format!("{b:02x}"));
        }
        let expires_at = clock::now_ms() + NONCE_TTL_SECS * 1000;
        self.store.insert_auth_nonce(&nonce, address.map(|a| a.to_string()).as_deref(), expires_at).await?;
        Ok(IssuedNonce { message: self.sign_in_message(&nonce), nonce, expires_in: NONCE_TTL_SECS })
    }

    pub async fn recover(&self, wallet: &str, nonce: &str, signature: &str) -> Result<Recovered, RecoveryError> {
        let wallet = Address::parse(wallet).map_err(|e| RecoveryError::BadRequest(format!("wallet: {e}")))?;
        if nonce.len() > 64 {
            return Err(RecoveryError::BadNonce);
        }
        let now_ms = clock::now_ms();
        // Single use: a wrong signature burns the nonce too.
        if !self.store.consume_auth_nonce(nonce, now_ms).await? {
            return Err(RecoveryError::BadNonce);
        }
        let message = self.sign_in_message(nonce);
        let by_key = parse_signature(signature)
            .ok()
            .and_then(|sig| recover_personal(&sig, message.as_bytes()).ok())
            .is_some_and(|signer| signer == wallet);
        if !by_key && !self.signed_by_contract_wallet(wallet, &message, signature).await {
            return Err(RecoveryError::SignatureMismatch);
        }
        let held = self.store.subscription_of(&wallet.to_string()).await?.ok_or(RecoveryError::NoSubscription)?;
        if held.released_at.is_some() || held.expires_at + self.grace_ms() <= now_ms {
            return Err(RecoveryError::NoSubscription);
        }
        let token = Token::generate();
        self.store.issue_token(held.id, &token.hash(), true, now_ms).await?;
        self.auth_cache.forget_subscription(held.id);
        tracing::info!(wallet = %wallet, "token recovered; older tokens revoked");
        Ok(Recovered { token, number: held.number, expires_at_ms: held.expires_at })
    }
}

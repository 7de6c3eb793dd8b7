//! 65-byte `r ‖ s ‖ v` ECDSA signatures over secp256k1: strict parsing (v in {27, 28} or
//! {0, 1}, low s as EIP-2 requires), recovery from a prehash, and EIP-191 personal messages.

use alloy_primitives::{B256, Signature, U256};

use super::Address;

/// Half the secp256k1 group order: a valid `s` is at most this (EIP-2).
const SECP256K1N_HALF: U256 =
    alloy_primitives::uint!(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0_U256);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature must be 0x-prefixed hex")]
    NotHex,
    #[error("signature must be 65 bytes (r, s, v), got {len}")]
    BadLength { len: usize },
    #[error("signature v must be 27 or 28 (or 0 or 1), got {v}")]
    BadV { v: u8 },
    #[error("signature s is not in the lower half of the curve order (EIP-2)")]
    HighS,
    #[error("no public key recovers from this signature")]
    Unrecoverable,
}

/// Parses `0x` + 130 hex digits.
pub fn parse_signature(hex: &str) -> Result<Signature, SignatureError> {
    let digits = hex.strip_prefix("0x").ok_or(SignatureError::NotHex)?;
    if digits.len() % 2 != 0 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::NotHex);
    }
    if digits.len() != 130 {
        return Err(SignatureError::BadLength { len: digits.len() / 2 });
    }
    let mut raw = [0u8; 65];
    for (i, pair) in digits.as_bytes().chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).map_err(|_| SignatureError::NotHex)?;
        raw[i] = u8::from_str_radix(s, 16).map_err(|_| SignatureError::NotHex)?;
    }
    let v = raw[64];
    if !matches!(v, 0 | 1 | 27 | 28) {
        return Err(SignatureError::BadV { v });
    }
    let sig = Signature::from_raw_array(&raw).map_err(|_| SignatureError::BadV { v })?;
    if sig.s() > SECP256K1N_HALF {
        return Err(SignatureError::HighS);
    }
    Ok(sig)
}

/// A verification-only libsecp256k1 context, built once.
fn secp() -> &'static secp256k1::Secp256k1<secp256k1::VerifyOnly> {
    static CONTEXT: std::sync::OnceLock<secp256k1::Secp256k1<secp256k1::VerifyOnly>> = std::sync::OnceLock::new();
    CONTEXT.get_or_init(secp256k1::Secp256k1::verification_only)
}

/// The address whose key produced `sig` over `hash`. Recovery runs in libsecp256k1 (about 5x
/// faster here than the pure-Rust k256 recovery, which also re-verifies; see
/// docs/benchmarks.md); the result is the same key.
pub fn recover_prehash(sig: &Signature, hash: &B256) -> Result<Address, SignatureError> {
    let recid =
        secp256k1::ecdsa::RecoveryId::try_from(i32::from(sig.v())).map_err(|_| SignatureError::Unrecoverable)?;
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&sig.s().to_be_bytes::<32>());
    let recoverable = secp256k1::ecdsa::RecoverableSignature::from_compact(&compact, recid)
        .map_err(|_| SignatureError::Unrecoverable)?;
    let key = secp()
        .recover_ecdsa(&secp256k1::Message::from_digest(hash.0), &recoverable)
        .map_err(|_| SignatureError::Unrecoverable)?;
    let uncompressed = key.serialize_uncompressed();
    let digest = alloy_primitives::keccak256(&uncompressed[1..]);
    Ok(Address::from(alloy_primitives::Address::from_slice(&digest[12..])))
}

/// The address that signed `message` with EIP-191 `personal_sign`.
pub fn recover_personal(sig: &Signature, message: &[u8]) -> Result<Address, SignatureError> {
    recover_prehash(sig, &alloy_primitives::eip191_hash_message(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "0xed6247005319afb40c2870a0ef41e03de917be4a3d7db5e3b12b08b0926ab51318b47ff8dd5a54ab0fd3725ed5bf90bc17f86e9e00777516f83b3e03aab65bbe1b";

    #[test]
    fn parses_and_rejects_each_failure() {
        assert!(parse_signature(SIG).is_ok());
        assert_eq!(parse_signature(&SIG[2..]), Err(SignatureError::NotHex));
        assert_eq!(parse_signature(&SIG[..130]), Err(SignatureError::BadLength { len: 64 }));
        assert_eq!(parse_signature(&format!("{SIG}00")), Err(SignatureError::BadLength { len: 66 }));
        assert_eq!(parse_signature(&format!("{}zz", &SIG[..130])), Err(SignatureError::NotHex));
        assert_eq!(parse_signature(&format!("{}25", &SIG[..130])), Err(SignatureError::BadV { v: 0x25 }));
        // v as 0/1 is accepted.
        assert!(parse_signature(&format!("{}00", &SIG[..130])).is_ok());
        // The same signature with s replaced by n - s (and v flipped) is malleated: rejected.
        let sig = parse_signature(SIG).expect("valid");
        let n = alloy_primitives::uint!(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256);
        let high = format!("0x{}{:064x}1c", &SIG[2..66], n - sig.s());
        assert_eq!(parse_signature(&high), Err(SignatureError::HighS));
    }

    #[test]
    fn personal_sign_round_trip() {
        use k256::ecdsa::SigningKey;
        let key = SigningKey::from_slice(&[7u8; 32]).expect("key");
        let message = b"Sign in to agentline\nNonce: n_test";
        let hash = alloy_primitives::eip191_hash_message(message);
        let (s, rec) = key.sign_prehash_recoverable(hash.as_slice()).expect("sign");
        let mut raw = [0u8; 65];
        raw[..64].copy_from_slice(&s.to_bytes());
        raw[64] = 27 + rec.to_byte();
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let sig = parse_signature(&format!("0x{hex}")).expect("parse");
        let expected = alloy_primitives::Address::from_private_key(&key);
        assert_eq!(recover_personal(&sig, message).expect("recover"), Address::from(expected));
        assert_ne!(recover_personal(&sig, b"another message").expect("recover"), Address::from(expected));
    }
}

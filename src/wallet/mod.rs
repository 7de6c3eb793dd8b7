//! Pure Ethereum identity: addresses, 65-byte ECDSA signatures, EIP-191 personal messages and
//! the EIP-712 hash of an EIP-3009 `TransferWithAuthorization`. No I/O, no clock: bytes and
//! strings in, values out. Recovery is secp256k1 through `alloy-primitives` (k256).

mod address;
mod eip3009;
mod signature;

pub use address::{Address, AddressError};
pub use eip3009::{Authorization, TokenDomain, authorization_hash};
pub use signature::{SignatureError, parse_signature, recover_personal, recover_prehash};

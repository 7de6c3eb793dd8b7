//! Pure Ethereum identity: addresses now; EIP-191 and EIP-712 recovery arrive with payments.
//! No I/O, no clock: bytes and strings in, values out.

mod address;

pub use address::{Address, AddressError};

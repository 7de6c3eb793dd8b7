// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title TestWallet1271
/// @notice Minimal ERC-1271 smart-contract wallet, written for agentline's integration tests.
///         `isValidSignature(hash, signature)` returns the ERC-1271 magic value 0x1626ba7e iff
///         `signature` is a 65-byte (r, s, v) ECDSA signature by `owner` over `hash` exactly as
///         given (no further prefixing: a caller that wants personal_sign semantics passes the
///         EIP-191 hash). High-s signatures and `v` not in {27, 28} are rejected. Anything else
///         returns 0xffffffff; it never reverts.
contract TestWallet1271 {
    bytes4 internal constant MAGIC_VALUE = 0x1626ba7e; // bytes4(keccak256("isValidSignature(bytes32,bytes)"))
    bytes4 internal constant INVALID = 0xffffffff;

    // Upper bound for `s` (secp256k1n / 2), as in EIP-2.
    uint256 private constant HALF_CURVE_ORDER =
        0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) {
            return INVALID;
        }
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_CURVE_ORDER || (v != 27 && v != 28)) {
            return INVALID;
        }
        address signer = ecrecover(hash, v, r, s);
        if (signer == address(0) || signer != owner) {
            return INVALID;
        }
        return MAGIC_VALUE;
    }
}

//! The cost of checking a payment and a recovery signature: x402 decode + full `exact`
//! verification (EIP-712 hash + secp256k1 recovery), and EIP-191 recovery alone.
//! Run: `cargo bench --bench signatures`.

use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

use agentline::payments::{Network, PaymentTerms, verify, wire};
use agentline::wallet::{Address, parse_signature, recover_personal};

/// A payment captured from `@x402/fetch` + `@x402/evm` 2.27 (Base mainnet USDC domain).
fn captured() -> (String, PaymentTerms) {
    let payload = json!({
        "x402Version": 2,
        "payload": {
            "authorization": {
                "from": "0x77943b1693989eDF61E79172D29DC95b15bFA905",
                "to": "0xEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE",
                "value": "1000000", "validAfter": "0", "validBefore": "1795374653",
                "nonce": "0x9cd52012f8ad3e6d19801ed7dd025e64919265743658264be1db5875ece4561e"
            },
            "signature": "0xed6247005319afb40c2870a0ef41e03de917be4a3d7db5e3b12b08b0926ab51318b47ff8dd5a54ab0fd3725ed5bf90bc17f86e9e00777516f83b3e03aab65bbe1b"
        },
        "resource": {"url": "http://127.0.0.1:4021/sms/subscribe"},
        "accepted": {"scheme": "exact", "network": "eip155:8453", "amount": "1000000",
            "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "payTo": "0xEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE",
            "maxTimeoutSeconds": 300, "extra": {"name": "USD Coin", "version": "2"}}
    });
    let terms = PaymentTerms {
        network: Network::parse("base").expect("network"),
        asset: Address::parse("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913").expect("asset"),
        pay_to: Address::parse("0xEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE").expect("payee"),
        price: alloy_primitives::U256::from(1_000_000u64),
        token_name: "USD Coin".to_owned(),
        token_version: "2".to_owned(),
        max_timeout_secs: 300,
        resource_url: "http://127.0.0.1:4021/sms/subscribe".to_owned(),
        description: "bench".to_owned(),
    };
    (base64::engine::general_purpose::STANDARD.encode(payload.to_string()), terms)
}

fn payments(c: &mut Criterion) {
    let (header, terms) = captured();
    let now = 1_795_374_000;
    let decoded = wire::decode_payment(&header).expect("decodes");
    assert!(verify(&decoded, &terms, now).is_ok(), "the fixture verifies");
    c.bench_function("x402 decode + verify (EIP-712 + ecrecover)", |b| {
        b.iter(|| {
            let p = wire::decode_payment(std::hint::black_box(&header)).expect("decodes");
            verify(&p, &terms, now).expect("valid")
        })
    });
    let sig = parse_signature(decoded.signature.as_str()).expect("sig");
    c.bench_function("EIP-191 recover", |b| {
        b.iter(|| {
            recover_personal(&sig, std::hint::black_box(b"Sign in to agentline\nNonce: n_0123")).expect("recovers")
        })
    });
}

criterion_group!(benches, payments);
criterion_main!(benches);

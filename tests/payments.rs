//! x402 subscriptions and wallet recovery end to end: the real server, payments signed by an
//! independent library (viem) or made by the official x402 clients, money on a real local
//! chain (anvil) where settlement is `chain`.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use support::peers::{self, Anvil, RELAYER_KEY, address_of, arg, node};
use support::tls::{Stunnel, TestCa};
use support::{Backend, TestServer, expect_error};

const PRICE: u128 = 1_000_000_000; // 1000 USDC
const TOKEN_NAME: &str = "USD Coin";
/// Sandbox runs do not touch a chain; the domain still names a token contract.
const SANDBOX_TOKEN: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const PAY_TO: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";

fn key(n: u8) -> String {
    format!("0x{}", format!("{n:02x}").repeat(32))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

both!(
    challenge_carries_v2_header_and_v1_fields,
    sandbox_subscribe_renew_and_number,
    every_rejected_payment_gets_a_stable_code_and_changes_nothing,
    concurrent_copies_of_one_payment_yield_one_subscription,
    idempotent_retries_never_charge_twice,
    pool_exhaustion_is_decided_before_settlement,
    recovery_rotates_tokens_and_reports_every_error,
    concurrent_first_payments_by_one_wallet_make_one_subscription,
);

async fn sandbox(backend: Backend, seed: u32) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.network = "eip155:84532".to_owned();
        c.asset = Some(SANDBOX_TOKEN.to_owned());
        c.token_name = Some(TOKEN_NAME.to_owned());
        c.pay_to = Some(PAY_TO.to_owned());
        c.sim.seed_numbers = seed;
    })
    .await
}

/// Options for a hand-made payment; defaults are a valid payment for the sandbox server.
#[derive(Clone)]
struct Pay {
    key: String,
    name: String,
    chain_id: u64,
    token: String,
    to: String,
    value: u128,
    valid_after: u64,
    valid_before: u64,
    nonce: Option<String>,
}

impl Pay {
    fn new(key: String, token: &str, chain_id: u64) -> Self {
        Self {
            key,
            name: TOKEN_NAME.to_owned(),
            chain_id,
            token: token.to_owned(),
            to: PAY_TO.to_owned(),
            value: PRICE,
            valid_after: 0,
            valid_before: now_secs() + 300,
            nonce: None,
        }
    }

    /// Signs with viem; answers the authorization JSON (with `signature`).
    async fn sign(&self) -> Value {
        let mut args = vec![
            arg("eip3009"),
            arg("--key"),
            self.key.clone(),
            arg("--name"),
            self.name.clone(),
            arg("--version"),
            arg("2"),
            arg("--chain-id"),
            arg(self.chain_id),
            arg("--token"),
            self.token.clone(),
            arg("--to"),
            self.to.clone(),
            arg("--value"),
            arg(self.value),
            arg("--valid-after"),
            arg(self.valid_after),
            arg("--valid-before"),
            arg(self.valid_before),
        ];
        if let Some(n) = &self.nonce {
            args.extend([arg("--nonce"), n.clone()]);
        }
        node("sign.mjs", &args).await
    }
}

/// A v2 `PAYMENT-SIGNATURE` payload around a signed authorization.
fn v2_payload(signed: &Value, network: &str, asset: &str, amount: u128) -> Value {
    let mut auth = signed.clone();
    let signature = auth.as_object_mut().expect("object").remove("signature").expect("signature");
    json!({
        "x402Version": 2,
        "payload": {"authorization": auth, "signature": signature},
        "resource": {"url": "http://127.0.0.1/sms/subscribe"},
        "accepted": {"scheme": "exact", "network": network, "amount": amount.to_string(), "asset": asset,
                     "payTo": PAY_TO, "maxTimeoutSeconds": 300, "extra": {"name": TOKEN_NAME, "version": "2"}},
    })
}

fn header(payload: &Value) -> String {
    STANDARD.encode(payload.to_string())
}

async fn subscribe_with(s: &TestServer, header_name: &str, value: &str, idem: Option<&str>) -> reqwest::Response {
    let mut req = s.http.post(s.url("/sms/subscribe")).header(header_name, value);
    if let Some(k) = idem {
        req = req.header("idempotency-key", k);
    }
    req.send().await.expect("subscribe")
}

async fn valid_header(pay: &Pay) -> String {
    header(&v2_payload(&pay.sign().await, "eip155:84532", &pay.token, PRICE))
}

async fn challenge_carries_v2_header_and_v1_fields(backend: Backend) {
    let s = sandbox(backend, 3).await;
    let resp = s.http.post(s.url("/sms/subscribe")).send().await.expect("post");
    assert_eq!(resp.status(), 402);
    let required =
        resp.headers().get("payment-required").expect("PAYMENT-REQUIRED").to_str().expect("ascii").to_owned();
    let v2: Value = serde_json::from_slice(&STANDARD.decode(required).expect("standard base64")).expect("json");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(v2["x402Version"], 2);
    assert_eq!(v2["resource"]["url"], format!("{}/sms/subscribe", s.base));
    let offer = &v2["accepts"][0];
    assert_eq!(offer["scheme"], "exact");
    assert_eq!(offer["network"], "eip155:84532");
    assert_eq!(offer["amount"], PRICE.to_string());
    assert_eq!(offer["asset"], SANDBOX_TOKEN);
    assert_eq!(offer["payTo"], PAY_TO);
    assert_eq!(offer["extra"], json!({"name": TOKEN_NAME, "version": "2"}));
    // The body: the contract's shape, entries also in v1 terms.
    assert_eq!(body["x402Version"], 2);
    assert!(body["error"].is_string() && body["message"].is_string());
    let entry = &body["accepts"][0];
    assert_eq!(entry["network"], "base-sepolia", "v1 clients know only v1 names");
    assert_eq!(entry["maxAmountRequired"], PRICE.to_string());
    assert_eq!(entry["amount"], PRICE.to_string());
    assert_eq!(entry["resource"], format!("{}/sms/subscribe", s.base));
    assert_eq!(entry["mimeType"], "application/json");
    assert!(entry["description"].is_string());
    s.stop().await;
}

async fn sandbox_subscribe_renew_and_number(backend: Backend) {
    let s = sandbox(backend, 3).await;
    let payer = address_of(&key(0x11));
    // The official v2 client, unmodified apart from its spend cap.
    let paid =
        node("pay.mjs", &[arg("--client"), arg("v2"), arg("--key"), key(0x11), arg("--url"), s.url("/sms/subscribe")])
            .await;
    assert_eq!(paid["status"], 200, "{paid}");
    let body = &paid["body"];
    assert_eq!(body["renewed"], false);
    assert_eq!(body["sandbox"], true);
    assert_eq!(paid["paymentResponse"]["success"], true);
    assert_eq!(paid["paymentResponse"]["payer"], payer.as_str());
    let token = body["token"].as_str().expect("token");
    let number = body["number"].as_str().expect("number");
    let info: Value = s.get("/sms/number", Some(token)).await.json().await.expect("json");
    assert_eq!(info["number"], number);
    assert_eq!(info["status"], "active");
    assert_eq!(info["subscription"]["payer_address"], payer.to_lowercase());
    assert_eq!(info["subscription"]["plan"], "yearly");

    // Renewal by the same wallet keeps the number and adds a year to the current expiry.
    let again =
        node("pay.mjs", &[arg("--client"), arg("v2"), arg("--key"), key(0x11), arg("--url"), s.url("/sms/subscribe")])
            .await;
    assert_eq!(again["status"], 200, "{again}");
    assert_eq!(again["body"]["renewed"], true);
    assert_eq!(again["body"]["number"], number);
    let first = agentline::clock::parse_rfc3339(body["expires_at"].as_str().expect("t")).expect("t");
    let second = agentline::clock::parse_rfc3339(again["body"]["expires_at"].as_str().expect("t")).expect("t");
    assert_eq!(second - first, 365 * 86_400_000);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments WHERE state = 'committed'").await, 2);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM numbers WHERE state = 'reserved'").await, 0);

    // The legacy v1 client (from the body, X-PAYMENT) and the PyPI client, in the sandbox too.
    let v1 =
        node("pay.mjs", &[arg("--client"), arg("v1"), arg("--key"), key(0x12), arg("--url"), s.url("/sms/subscribe")])
            .await;
    assert_eq!(v1["status"], 200, "{v1}");
    assert_eq!(v1["body"]["sandbox"], true);
    let py = peers::python_pay(&[arg("--key"), key(0x13), arg("--url"), s.url("/sms/subscribe")]).await;
    assert_eq!(py["status"], 200, "{py}");
    assert_eq!(py["paymentResponse"]["payer"], address_of(&key(0x13)).as_str());
    assert_eq!(s.scalar("SELECT COUNT(*) FROM subscriptions").await, 3);
    s.stop().await;
}

async fn every_rejected_payment_gets_a_stable_code_and_changes_nothing(backend: Backend) {
    let s = sandbox(backend, 3).await;
    let base = Pay::new(key(0x21), SANDBOX_TOKEN, 84532);
    let now = now_secs();
    let other = "0x1111111111111111111111111111111111111111";
    let mut cases: Vec<(&str, String, u16, &str)> = Vec::new();

    let p = Pay { to: other.to_owned(), ..base.clone() };
    cases.push(("wrong payTo", valid_header(&p).await, 402, "invalid_exact_evm_payload_recipient_mismatch"));
    let p = Pay { value: PRICE - 1, ..base.clone() };
    cases.push((
        "under-paid",
        header(&v2_payload(&p.sign().await, "eip155:84532", SANDBOX_TOKEN, PRICE)),
        402,
        "invalid_exact_evm_payload_authorization_value_mismatch",
    ));
    let p = Pay { value: PRICE + 1, ..base.clone() };
    cases.push((
        "over-paid",
        header(&v2_payload(&p.sign().await, "eip155:84532", SANDBOX_TOKEN, PRICE)),
        402,
        "invalid_exact_evm_payload_authorization_value_mismatch",
    ));
    let p = Pay { valid_before: now - 10, ..base.clone() };
    cases.push(("expired", valid_header(&p).await, 402, "invalid_exact_evm_payload_authorization_valid_before"));
    let p = Pay { valid_before: now + 3, ..base.clone() };
    cases.push((
        "expires within the 6 s grace",
        valid_header(&p).await,
        402,
        "invalid_exact_evm_payload_authorization_valid_before",
    ));
    let p = Pay { valid_after: now + 600, ..base.clone() };
    cases.push(("not yet valid", valid_header(&p).await, 402, "invalid_exact_evm_payload_authorization_valid_after"));
    let p = Pay { chain_id: 8453, ..base.clone() };
    cases.push(("signed for another chain id", valid_header(&p).await, 402, "invalid_exact_evm_payload_signature"));
    cases.push((
        "another network claimed",
        header(&v2_payload(&base.sign().await, "eip155:8453", SANDBOX_TOKEN, PRICE)),
        402,
        "invalid_network",
    ));
    let p = Pay { token: other.to_owned(), ..base.clone() };
    cases.push((
        "signed for another token contract",
        header(&v2_payload(&p.sign().await, "eip155:84532", SANDBOX_TOKEN, PRICE)),
        402,
        "invalid_exact_evm_payload_signature",
    ));
    cases.push((
        "another asset accepted",
        header(&v2_payload(&base.sign().await, "eip155:84532", other, PRICE)),
        402,
        "invalid_payment_requirements",
    ));
    let p = Pay { name: "USDC".to_owned(), ..base.clone() };
    cases.push(("wrong token name", valid_header(&p).await, 402, "invalid_exact_evm_payload_signature"));
    let mut tampered = base.sign().await;
    tampered["value"] = json!((PRICE - 1).to_string());
    let mut t2 = v2_payload(&tampered, "eip155:84532", SANDBOX_TOKEN, PRICE);
    t2["payload"]["authorization"]["value"] = json!(PRICE.to_string());
    let p = Pay { value: PRICE - 1, ..base.clone() };
    let mut t3 = v2_payload(&p.sign().await, "eip155:84532", SANDBOX_TOKEN, PRICE);
    t3["payload"]["authorization"]["value"] = json!(PRICE.to_string());
    cases.push(("tampered value", header(&t3), 402, "invalid_exact_evm_payload_signature"));
    let mut by_other =
        v2_payload(&Pay { key: key(0x22), ..base.clone() }.sign().await, "eip155:84532", SANDBOX_TOKEN, PRICE);
    by_other["payload"]["authorization"]["from"] = json!(address_of(&key(0x21)));
    cases.push(("signed by another key", header(&by_other), 402, "invalid_exact_evm_payload_signature"));
    let mut truncated = v2_payload(&base.sign().await, "eip155:84532", SANDBOX_TOKEN, PRICE);
    let sig = truncated["payload"]["signature"].as_str().expect("sig").to_owned();
    truncated["payload"]["signature"] = json!(sig[..sig.len() - 2]);
    cases.push(("truncated signature", header(&truncated), 402, "invalid_exact_evm_payload_signature"));
    let mut scheme = v2_payload(&base.sign().await, "eip155:84532", SANDBOX_TOKEN, PRICE);
    scheme["accepted"]["scheme"] = json!("upto");
    cases.push(("wrong scheme", header(&scheme), 402, "unsupported_scheme"));
    let mut version = v2_payload(&base.sign().await, "eip155:84532", SANDBOX_TOKEN, PRICE);
    version["x402Version"] = json!(7);
    cases.push(("unknown x402 version", header(&version), 402, "invalid_x402_version"));
    cases.push(("undecodable header", "%%% not base64 %%%".to_owned(), 400, "invalid_payload"));
    cases.push(("JSON that is not a payment", STANDARD.encode("{\"hello\": 1}"), 400, "invalid_payload"));
    let mut bad_nonce = v2_payload(&base.sign().await, "eip155:84532", SANDBOX_TOKEN, PRICE);
    bad_nonce["payload"]["authorization"]["nonce"] = json!("0x1234");
    cases.push(("malformed nonce", header(&bad_nonce), 400, "invalid_payload"));
    cases.push(("oversize header", "A".repeat(9000), 400, "invalid_payload"));

    for (what, value, status, code) in cases {
        let resp = subscribe_with(&s, "payment-signature", &value, None).await;
        let got = resp.status().as_u16();
        let has_challenge = resp.headers().contains_key("payment-required");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!((got, body["error"].as_str()), (status, Some(code)), "{what}: {body}");
        assert!(body["message"].is_string(), "{what}: message");
        if status == 402 {
            assert!(has_challenge && body["accepts"].is_array(), "{what}: a fresh challenge comes with a 402");
        }
    }
    // The same checks through the v1 header.
    let v1 = json!({"x402Version": 1, "scheme": "exact", "network": "base", "payload": v2_payload(&base.sign().await, "x", "x", 0)["payload"]});
    expect_error(subscribe_with(&s, "x-payment", &header(&v1), None).await, 402, "invalid_network").await;

    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments").await, 0, "nothing written");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM subscriptions").await, 0);
    assert_eq!(s.get("/sms/availability", None).await.json::<Value>().await.expect("json")["available"], 3);
    s.stop().await;
}

async fn concurrent_copies_of_one_payment_yield_one_subscription(backend: Backend) {
    let s = Arc::new(sandbox(backend, 5).await);
    let second = s.second_node().await;
    let value = valid_header(&Pay::new(key(0x31), SANDBOX_TOKEN, 84532)).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (s, value) = (s.clone(), value.clone());
        let url = if i % 2 == 0 { s.url("/sms/subscribe") } else { format!("{}/sms/subscribe", second.base) };
        tasks.push(tokio::spawn(async move {
            let resp = s.http.post(url).header("payment-signature", value).send().await.expect("post");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.expect("json");
            (status, body)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.expect("task");
        match status {
            200 => ok += 1,
            402 => assert_eq!(body["error"], "invalid_exact_evm_nonce_already_used"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one copy buys");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments").await, 1);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM subscriptions").await, 1);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM numbers WHERE state = 'assigned'").await, 1);
    second.stop().await;
    Arc::into_inner(s).expect("sole owner").stop().await;
}

async fn idempotent_retries_never_charge_twice(backend: Backend) {
    let s = sandbox(backend, 3).await;
    let pay = Pay::new(key(0x41), SANDBOX_TOKEN, 84532);
    let first_header = valid_header(&pay).await;
    let k = "retry-key-0123456789";
    let first: Value =
        subscribe_with(&s, "payment-signature", &first_header, Some(k)).await.json().await.expect("json");
    assert!(first["token"].is_string(), "{first}");
    // The client lost the answer and retries: same key, even a freshly signed payment.
    let again_header = valid_header(&pay).await;
    let resp = subscribe_with(&s, "payment-signature", &again_header, Some(k)).await;
    assert_eq!(resp.status(), 200);
    let again: Value = resp.json().await.expect("json");
    assert_eq!(again["number"], first["number"]);
    assert_eq!(again["expires_at"], first["expires_at"], "not extended: not charged again");
    assert_ne!(again["token"], first["token"], "a fresh token for the same subscription");
    for t in [&first["token"], &again["token"]] {
        assert_eq!(s.get("/sms/number", Some(t.as_str().expect("t"))).await.status(), 200);
    }
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments").await, 1);
    // The payment-identifier extension works the same way.
    let mut with_id =
        v2_payload(&Pay::new(key(0x42), SANDBOX_TOKEN, 84532).sign().await, "eip155:84532", SANDBOX_TOKEN, PRICE);
    with_id["extensions"] = json!({"payment-identifier": {"info": {"id": "pid_0123456789abcdef"}}});
    let a: Value = subscribe_with(&s, "payment-signature", &header(&with_id), None).await.json().await.expect("json");
    let b: Value = subscribe_with(&s, "payment-signature", &header(&with_id), None).await.json().await.expect("json");
    assert_eq!(a["number"], b["number"]);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments").await, 2);
    expect_error(subscribe_with(&s, "payment-signature", &first_header, Some("short")).await, 400, "invalid_request")
        .await;
    s.stop().await;
}

async fn pool_exhaustion_is_decided_before_settlement(backend: Backend) {
    let s = sandbox(backend, 1).await;
    assert_eq!(
        subscribe_with(&s, "payment-signature", &valid_header(&Pay::new(key(0x51), SANDBOX_TOKEN, 84532)).await, None)
            .await
            .status(),
        200
    );
    let body = expect_error(
        subscribe_with(&s, "payment-signature", &valid_header(&Pay::new(key(0x52), SANDBOX_TOKEN, 84532)).await, None)
            .await,
        503,
        "pool_exhausted",
    )
    .await;
    assert_eq!(body["available"], 0);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments").await, 1, "the refused payment left no row");
    // The first wallet can still renew with a full pool.
    assert_eq!(
        subscribe_with(&s, "payment-signature", &valid_header(&Pay::new(key(0x51), SANDBOX_TOKEN, 84532)).await, None)
            .await
            .status(),
        200
    );
    s.stop().await;
}

async fn recovery_rotates_tokens_and_reports_every_error(backend: Backend) {
    let s = sandbox(backend, 3).await;
    let wallet_key = key(0x61);
    let wallet = address_of(&wallet_key);
    let paid: Value = subscribe_with(
        &s,
        "payment-signature",
        &valid_header(&Pay::new(wallet_key.clone(), SANDBOX_TOKEN, 84532)).await,
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    let old_token = paid["token"].as_str().expect("token").to_owned();

    let issued: Value = s.post("/sms/auth/nonce", None, &json!({"address": wallet})).await.json().await.expect("json");
    assert_eq!(issued["expires_in"], 300);
    let nonce = issued["nonce"].as_str().expect("nonce").to_owned();
    let message = issued["message"].as_str().expect("message").to_owned();
    assert_eq!(message, format!("Sign in to agentline\nNonce: {nonce}"));
    let signed =
        node("sign.mjs", &[arg("personal"), arg("--key"), wallet_key.clone(), arg("--message"), message.clone()]).await;
    let recovered: Value = s
        .post("/sms/auth", None, &json!({"wallet": wallet, "nonce": nonce, "signature": signed["signature"]}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(recovered["number"], paid["number"]);
    assert_eq!(recovered["expires_at"], paid["expires_at"]);
    let new_token = recovered["token"].as_str().expect("token");
    assert_eq!(s.get("/sms/number", Some(new_token)).await.status(), 200);
    expect_error(s.get("/sms/number", Some(&old_token)).await, 401, "unauthorized").await;
    // The nonce was single use.
    expect_error(
        s.post("/sms/auth", None, &json!({"wallet": wallet, "nonce": nonce, "signature": signed["signature"]})).await,
        401,
        "unauthorized",
    )
    .await;

    // Every error of the contract.
    expect_error(s.post("/sms/auth", None, &json!({"wallet": wallet})).await, 400, "invalid_request").await;
    expect_error(
        s.post("/sms/auth", None, &json!({"wallet": "0x12", "nonce": "n_x", "signature": "0x"})).await,
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        s.post("/sms/auth", None, &json!({"wallet": wallet, "nonce": "n_unknown", "signature": signed["signature"]}))
            .await,
        401,
        "unauthorized",
    )
    .await;
    let n2 = fresh_nonce(&s).await;
    let by_other = node(
        "sign.mjs",
        &[arg("personal"), arg("--key"), key(0x62), arg("--message"), n2["message"].as_str().expect("m").to_owned()],
    )
    .await;
    expect_error(
        s.post("/sms/auth", None, &json!({"wallet": wallet, "nonce": n2["nonce"], "signature": by_other["signature"]}))
            .await,
        401,
        "signature_mismatch",
    )
    .await;
    let n3 = fresh_nonce(&s).await;
    expect_error(
        s.post("/sms/auth", None, &json!({"wallet": wallet, "nonce": n3["nonce"], "signature": "0xdeadbeef"})).await,
        401,
        "signature_mismatch",
    )
    .await;
    let n4 = fresh_nonce(&s).await;
    s.exec(&format!("UPDATE auth_nonces SET expires_at = 1 WHERE nonce = '{}'", n4["nonce"].as_str().expect("n")))
        .await;
    let expired_sig = node(
        "sign.mjs",
        &[
            arg("personal"),
            arg("--key"),
            wallet_key.clone(),
            arg("--message"),
            n4["message"].as_str().expect("m").to_owned(),
        ],
    )
    .await;
    expect_error(
        s.post(
            "/sms/auth",
            None,
            &json!({"wallet": wallet, "nonce": n4["nonce"], "signature": expired_sig["signature"]}),
        )
        .await,
        401,
        "unauthorized",
    )
    .await;
    let n5 = fresh_nonce(&s).await;
    let stranger = node(
        "sign.mjs",
        &[arg("personal"), arg("--key"), key(0x63), arg("--message"), n5["message"].as_str().expect("m").to_owned()],
    )
    .await;
    let body = expect_error(
        s.post(
            "/sms/auth",
            None,
            &json!({"wallet": stranger["address"], "nonce": n5["nonce"], "signature": stranger["signature"]}),
        )
        .await,
        402,
        "no_active_subscription",
    )
    .await;
    assert!(body["warning"].is_string());
    expect_error(
        s.post_raw("/sms/auth/nonce", None, Some("application/json"), b"{nope".to_vec()).await,
        400,
        "invalid_request",
    )
    .await;
    expect_error(s.post("/sms/auth/nonce", None, &json!({"address": "nope"})).await, 400, "invalid_request").await;
    s.stop().await;
}

async fn concurrent_first_payments_by_one_wallet_make_one_subscription(backend: Backend) {
    let s = Arc::new(sandbox(backend, 5).await);
    let mut headers = Vec::new();
    for _ in 0..6 {
        headers.push(valid_header(&Pay::new(key(0xe1), SANDBOX_TOKEN, 84532)).await);
    }
    let tasks: Vec<_> = headers
        .into_iter()
        .map(|h| {
            let s = s.clone();
            tokio::spawn(async move { subscribe_with(&s, "payment-signature", &h, None).await.status().as_u16() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task"), 200, "every distinct payment buys a year");
    }
    assert_eq!(s.scalar("SELECT COUNT(*) FROM subscriptions").await, 1);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM numbers WHERE state = 'assigned'").await, 1);
    let expires = s.scalar("SELECT expires_at FROM subscriptions").await;
    let years = (expires - agentline::clock::now_ms()) as f64 / (365.0 * 86_400_000.0);
    assert!((5.99..6.01).contains(&years), "six payments, six years: {years}");
    Arc::into_inner(s).expect("sole owner").stop().await;
}

async fn fresh_nonce(s: &TestServer) -> Value {
    s.post("/sms/auth/nonce", None, &json!({})).await.json::<Value>().await.expect("json")
}

// --- On a real chain (anvil), SQLite ------------------------------------------------------

struct ChainSetup {
    anvil: Anvil,
    token: String,
}

async fn chain_setup(chain_id: u64, payers: &[String]) -> ChainSetup {
    let anvil = Anvil::start(chain_id);
    let token = anvil.deploy(TOKEN_NAME, "2").await;
    for p in payers {
        anvil.mint(&token, &address_of(p), 5 * PRICE).await;
    }
    ChainSetup { anvil, token }
}

async fn chain_server(c: &ChainSetup, network: &str, seed: u32) -> TestServer {
    let (rpc, token, network) = (c.anvil.rpc.clone(), c.token.clone(), network.to_owned());
    TestServer::start_with(Backend::Sqlite, move |cfg| {
        cfg.settlement = agentline::config::SettlementBackend::Chain;
        cfg.rpc_url = Some(rpc);
        cfg.relayer_key = Some(agentline::config::Secret::new(RELAYER_KEY));
        cfg.network = network;
        cfg.asset = Some(token);
        cfg.token_name = Some(TOKEN_NAME.to_owned());
        cfg.pay_to = Some(PAY_TO.to_owned());
        cfg.receipt_timeout_secs = 20;
        cfg.sim.seed_numbers = seed;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_clients_pay_on_chain_and_the_payee_receives_exactly_the_price() {
    let payers = [key(0x71), key(0x72), key(0x73)];
    let chain = chain_setup(84532, &payers).await;
    let s = chain_server(&chain, "base-sepolia", 5).await;
    let url = s.url("/sms/subscribe");
    for (i, client) in ["v2", "v1", "python"].iter().enumerate() {
        let before_payee = chain.anvil.balance(&chain.token, PAY_TO).await;
        let before_payer = chain.anvil.balance(&chain.token, &address_of(&payers[i])).await;
        let args = vec![arg("--key"), payers[i].clone(), arg("--url"), url.clone()];
        let paid = match *client {
            "python" => peers::python_pay(&args).await,
            v => node("pay.mjs", &[vec![arg("--client"), arg(v)], args].concat()).await,
        };
        assert_eq!(paid["status"], 200, "{client}: {paid}");
        assert_eq!(paid["body"]["sandbox"], false);
        let tx = paid["paymentResponse"]["transaction"].as_str().expect("transaction");
        assert_eq!(tx.len(), 66, "{client}: a transaction hash");
        assert_eq!(chain.anvil.balance(&chain.token, PAY_TO).await - before_payee, PRICE, "{client}: payee +price");
        assert_eq!(
            before_payer - chain.anvil.balance(&chain.token, &address_of(&payers[i])).await,
            PRICE,
            "{client}: payer -price"
        );
        let token = paid["body"]["token"].as_str().expect("token");
        assert_eq!(s.get("/sms/number", Some(token)).await.json::<Value>().await.expect("json")["status"], "active");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_chain_failures_release_the_number_and_take_no_money() {
    let funded = key(0x81);
    let chain = chain_setup(84532, std::slice::from_ref(&funded)).await;
    let s = chain_server(&chain, "eip155:84532", 2).await;
    // Unfunded payer: the settlement reverts; the reserved number goes back to the pool.
    let unfunded = Pay::new(key(0x82), &chain.token, 84532);
    let resp = subscribe_with(&s, "payment-signature", &valid_header(&unfunded).await, None).await;
    assert_eq!(resp.status(), 402);
    assert_eq!(resp.json::<Value>().await.expect("json")["error"], "insufficient_funds");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM numbers WHERE state = 'free'").await, 2, "reservation released");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments WHERE state = 'failed'").await, 1);
    assert_eq!(chain.anvil.balance(&chain.token, PAY_TO).await, 0);

    // Pool exhaustion: decided before any money moves.
    let a = Pay::new(funded.clone(), &chain.token, 84532);
    let resp = subscribe_with(&s, "payment-signature", &valid_header(&a).await, None).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    s.exec("UPDATE numbers SET state = 'quarantined' WHERE state = 'free'").await;
    let b = Pay { nonce: Some(format!("0x{}", "ab".repeat(32))), ..Pay::new(key(0x83), &chain.token, 84532) };
    chain.anvil.mint(&chain.token, &address_of(&b.key), 5 * PRICE).await;
    expect_error(subscribe_with(&s, "payment-signature", &valid_header(&b).await, None).await, 503, "pool_exhausted")
        .await;
    assert_eq!(chain.anvil.balance(&chain.token, &address_of(&b.key)).await, 5 * PRICE, "not charged");
    assert!(!chain.anvil.auth_used(&chain.token, &address_of(&b.key), b.nonce.as_deref().expect("n")).await);
    assert_eq!(chain.anvil.balance(&chain.token, PAY_TO).await, PRICE);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_settlement_and_commit_is_recovered_at_restart() {
    let payer_key = key(0x91);
    let chain = chain_setup(84532, std::slice::from_ref(&payer_key)).await;
    let mut s = chain_server(&chain, "eip155:84532", 2).await;
    let payer = address_of(&payer_key);
    // What a crashed process leaves: the payment row `settling`, the money moved on chain.
    let signed = Pay::new(payer_key.clone(), &chain.token, 84532).sign().await;
    s.shutdown().await;
    let field = |k: &str| signed[k].as_str().expect("field").to_owned();
    node(
        "chain.mjs",
        &[
            arg("settle"),
            arg("--rpc"),
            chain.anvil.rpc.clone(),
            arg("--token"),
            chain.token.clone(),
            arg("--key"),
            RELAYER_KEY.to_owned(),
            arg("--from"),
            field("from"),
            arg("--to"),
            field("to"),
            arg("--value"),
            field("value"),
            arg("--valid-after"),
            field("validAfter"),
            arg("--valid-before"),
            field("validBefore"),
            arg("--nonce"),
            field("nonce"),
            arg("--signature"),
            field("signature"),
        ],
    )
    .await;
    s.exec("UPDATE numbers SET state = 'reserved' WHERE e164 = (SELECT MIN(e164) FROM numbers)").await;
    s.exec(&format!(
        "INSERT INTO payments (x402_version, network, asset, payer, pay_to, amount, auth_nonce, valid_before, signature, state, \
         number, renewal, created_at, updated_at) VALUES (2, 'eip155:84532', '{}', '{}', '{}', '{PRICE}', '{}', {}, '{}', \
         'settling', (SELECT MIN(e164) FROM numbers), 0, 1, 1)",
        chain.token.to_lowercase(), payer.to_lowercase(), PAY_TO.to_lowercase(), field("nonce"), field("validBefore"), field("signature")
    ))
    .await;
    s.resume().await;
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM payments WHERE state = 'committed'").await,
        1,
        "reconciled from the chain"
    );
    assert_eq!(s.scalar("SELECT COUNT(*) FROM numbers WHERE state = 'assigned'").await, 1);
    // The payer collects the subscription with its wallet.
    let issued: Value = s.post("/sms/auth/nonce", None, &json!({})).await.json().await.expect("json");
    let sig = node(
        "sign.mjs",
        &[
            arg("personal"),
            arg("--key"),
            payer_key.clone(),
            arg("--message"),
            issued["message"].as_str().expect("m").to_owned(),
        ],
    )
    .await;
    let recovered: Value = s
        .post("/sms/auth", None, &json!({"wallet": payer, "nonce": issued["nonce"], "signature": sig["signature"]}))
        .await
        .json()
        .await
        .expect("json");
    let token = recovered["token"].as_str().expect("token");
    let info: Value = s.get("/sms/number", Some(token)).await.json().await.expect("json");
    assert_eq!(info["subscription"]["payer_address"], payer.to_lowercase());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_timeout_is_pending_never_failed() {
    // An RPC that accepts connections but never answers: the outcome is unknown.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let rpc = format!("http://{}", silent.local_addr().expect("addr"));
    let s = TestServer::start_with(Backend::Sqlite, move |cfg| {
        cfg.settlement = agentline::config::SettlementBackend::Chain;
        cfg.rpc_url = Some(rpc);
        cfg.relayer_key = Some(agentline::config::Secret::new(RELAYER_KEY));
        cfg.network = "eip155:84532".to_owned();
        cfg.asset = Some(SANDBOX_TOKEN.to_owned());
        cfg.token_name = Some(TOKEN_NAME.to_owned());
        cfg.pay_to = Some(PAY_TO.to_owned());
        cfg.receipt_timeout_secs = 1;
    })
    .await;
    let started = std::time::Instant::now();
    let resp =
        subscribe_with(&s, "payment-signature", &valid_header(&Pay::new(key(0xa1), SANDBOX_TOKEN, 84532)).await, None)
            .await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("json");
    assert_eq!((status, body["error"].as_str()), (402, Some("settlement_pending")), "{body}");
    assert!(started.elapsed() < Duration::from_secs(30), "bounded by the receipt timeout");
    // The reservation is kept for reconciliation: the money may have moved.
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments WHERE state = 'pending'").await, 1);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM numbers WHERE state = 'reserved'").await, 1);
    drop(silent);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_facilitator_settles_v2_and_v1_payments() {
    let payers = [key(0xc1), key(0xc2)];
    let chain = chain_setup(84532, &payers).await;
    let facilitator = peers::FacilitatorPeer::start(&chain.anvil.rpc);
    let (url, token) = (facilitator.url.clone(), chain.token.clone());
    let s = TestServer::start_with(Backend::Sqlite, move |cfg| {
        cfg.settlement = agentline::config::SettlementBackend::Facilitator;
        cfg.facilitator_url = Some(url);
        cfg.network = "base-sepolia".to_owned();
        cfg.asset = Some(token);
        cfg.token_name = Some(TOKEN_NAME.to_owned());
        cfg.pay_to = Some(PAY_TO.to_owned());
        cfg.receipt_timeout_secs = 20;
    })
    .await;
    for (i, client) in ["v2", "v1"].iter().enumerate() {
        let before = chain.anvil.balance(&chain.token, PAY_TO).await;
        let paid = node(
            "pay.mjs",
            &[arg("--client"), arg(client), arg("--key"), payers[i].clone(), arg("--url"), s.url("/sms/subscribe")],
        )
        .await;
        assert_eq!(paid["status"], 200, "{client}: {paid}");
        assert_eq!(paid["body"]["sandbox"], false);
        assert_eq!(chain.anvil.balance(&chain.token, PAY_TO).await - before, PRICE, "{client}: payee +price");
    }
    // An unfunded payer: the facilitator refuses, the number goes back.
    let resp =
        subscribe_with(&s, "payment-signature", &valid_header(&Pay::new(key(0xc3), &chain.token, 84532)).await, None)
            .await;
    assert_eq!(resp.status(), 402);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM numbers WHERE state = 'reserved'").await, 0);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments WHERE state = 'failed'").await, 1);
    s.stop().await;
}

// --- Over TLS: Debian's stunnel terminates HTTPS in front of anvil and the facilitator --------

/// `http://127.0.0.1:PORT` -> the address stunnel forwards to.
fn tcp_addr(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://").trim_end_matches('/').parse().expect("host:port")
}

async fn https_chain_server(c: &ChainSetup, rpc: String, ca_file: Option<&Path>, seed: u32) -> TestServer {
    let (token, ca_file) = (c.token.clone(), ca_file.map(|p| p.to_str().expect("utf-8").to_owned()));
    TestServer::start_with(Backend::Sqlite, move |cfg| {
        cfg.settlement = agentline::config::SettlementBackend::Chain;
        cfg.rpc_url = Some(rpc);
        cfg.relayer_key = Some(agentline::config::Secret::new(RELAYER_KEY));
        cfg.network = "base-sepolia".to_owned();
        cfg.asset = Some(token);
        cfg.token_name = Some(TOKEN_NAME.to_owned());
        cfg.pay_to = Some(PAY_TO.to_owned());
        cfg.receipt_timeout_secs = 20;
        cfg.sim.seed_numbers = seed;
        cfg.tls.ca_file = ca_file;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_clients_pay_on_chain_through_https() {
    let payers = [key(0xe1), key(0xe2), key(0xe3)];
    let chain = chain_setup(84532, &payers).await;
    let ca = TestCa::new("agentline test CA");
    let front = Stunnel::start(tcp_addr(&chain.anvil.rpc), &ca.issue("rpc", &["IP:127.0.0.1", "DNS:localhost"]));
    let s = https_chain_server(&chain, front.url(), Some(&ca.cert), 5).await;
    let ready: Value = s.get("/health/ready", None).await.json().await.expect("json");
    assert_eq!(ready["checks"]["settlement"], json!({"status": "ok", "name": "chain"}));
    let url = s.url("/sms/subscribe");
    for (i, client) in ["v2", "v1", "python"].iter().enumerate() {
        let before_payee = chain.anvil.balance(&chain.token, PAY_TO).await;
        let args = vec![arg("--key"), payers[i].clone(), arg("--url"), url.clone()];
        let paid = match *client {
            "python" => peers::python_pay(&args).await,
            v => node("pay.mjs", &[vec![arg("--client"), arg(v)], args].concat()).await,
        };
        assert_eq!(paid["status"], 200, "{client}: {paid}");
        assert_eq!(paid["body"]["sandbox"], false);
        assert_eq!(chain.anvil.balance(&chain.token, PAY_TO).await - before_payee, PRICE, "{client}: payee +price");
    }
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments WHERE state = 'committed'").await, 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_or_misnamed_rpc_certificate_refuses_the_payment_and_moves_nothing() {
    let payer = key(0xe4);
    let chain = chain_setup(84532, std::slice::from_ref(&payer)).await;
    let ca = TestCa::new("agentline test CA");
    let anvil = tcp_addr(&chain.anvil.rpc);
    let trusted_name = Stunnel::start(anvil, &ca.issue("rpc", &["IP:127.0.0.1"]));
    let other_name = Stunnel::start(anvil, &ca.issue("other", &["DNS:rpc.example.net"]));
    let cases = [
        ("the CA file is absent", trusted_name.url(), None),
        ("the certificate names another host", other_name.url(), Some(ca.cert.as_path())),
    ];
    for (i, (why, rpc, ca_file)) in cases.into_iter().enumerate() {
        let s = https_chain_server(&chain, rpc.clone(), ca_file, 2).await;
        // Readiness names the cause without the URL (a hosted RPC's URL carries its API key).
        let ready: Value = s.get("/health/ready", None).await.json().await.expect("json");
        let check = &ready["checks"]["settlement"];
        assert_eq!((check["status"].as_str(), check["name"].as_str()), (Some("fail"), Some("chain")), "{why}: {ready}");
        let reason = check["reason"].as_str().expect("reason");
        assert!(reason.starts_with("TLS: invalid peer certificate"), "{why}: {reason}");
        assert!(!reason.contains(&rpc[8..]), "{why}: the URL leaked: {reason}");
        assert_eq!(ready["status"], "ready", "{why}: settlement is reported, not gating");
        let nonce = format!("0x{:02x}{}", i, "cd".repeat(31));
        let pay = Pay { nonce: Some(nonce.clone()), ..Pay::new(payer.clone(), &chain.token, 84532) };
        let resp = subscribe_with(&s, "payment-signature", &valid_header(&pay).await, None).await;
        assert_eq!(resp.status(), 402, "{why}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "unexpected_settle_error", "{why}: {body}");
        assert_eq!(s.scalar("SELECT COUNT(*) FROM numbers WHERE state = 'free'").await, 2, "{why}: number released");
        assert_eq!(s.scalar("SELECT COUNT(*) FROM payments WHERE state = 'failed'").await, 1, "{why}");
        assert_eq!(chain.anvil.balance(&chain.token, &address_of(&payer)).await, 5 * PRICE, "{why}: not charged");
        assert!(!chain.anvil.auth_used(&chain.token, &address_of(&payer), &nonce).await, "{why}: never submitted");
        s.stop().await;
    }
    assert_eq!(chain.anvil.balance(&chain.token, PAY_TO).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_facilitator_behind_https_settles_and_an_untrusted_one_is_refused() {
    let payers = [key(0xe5), key(0xe6)];
    let chain = chain_setup(84532, &payers).await;
    let facilitator = peers::FacilitatorPeer::start(&chain.anvil.rpc);
    let ca = TestCa::new("agentline test CA");
    let front = Stunnel::start(tcp_addr(&facilitator.url), &ca.issue("facilitator", &["IP:127.0.0.1"]));
    for (i, trusted) in [true, false].into_iter().enumerate() {
        let (url, token) = (front.url(), chain.token.clone());
        let ca_file = trusted.then(|| ca.cert.to_str().expect("utf-8").to_owned());
        let s = TestServer::start_with(Backend::Sqlite, move |cfg| {
            cfg.settlement = agentline::config::SettlementBackend::Facilitator;
            cfg.facilitator_url = Some(url);
            cfg.network = "base-sepolia".to_owned();
            cfg.asset = Some(token);
            cfg.token_name = Some(TOKEN_NAME.to_owned());
            cfg.pay_to = Some(PAY_TO.to_owned());
            cfg.receipt_timeout_secs = 20;
            cfg.tls.ca_file = ca_file;
        })
        .await;
        let ready: Value = s.get("/health/ready", None).await.json().await.expect("json");
        let check = &ready["checks"]["settlement"];
        assert_eq!(check["status"], if trusted { "ok" } else { "fail" }, "{ready}");
        assert_eq!(check["name"], "facilitator");
        let before = chain.anvil.balance(&chain.token, PAY_TO).await;
        let args = [arg("--client"), arg("v2"), arg("--key"), payers[i].clone(), arg("--url"), s.url("/sms/subscribe")];
        let paid = node("pay.mjs", &args).await;
        if trusted {
            assert_eq!(paid["status"], 200, "{paid}");
            assert_eq!(chain.anvil.balance(&chain.token, PAY_TO).await - before, PRICE, "payee +price");
        } else {
            assert_eq!(paid["status"], 402, "{paid}");
            assert_eq!(chain.anvil.balance(&chain.token, PAY_TO).await, before, "nothing moved");
            assert_eq!(s.scalar("SELECT COUNT(*) FROM numbers WHERE state = 'reserved'").await, 0);
            assert_eq!(s.scalar("SELECT COUNT(*) FROM payments WHERE state = 'failed'").await, 1);
        }
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_wallet_recovers_its_token_with_erc1271() {
    let anvil = Anvil::start(84532);
    let owner_key = key(0xd1);
    let wallet = node(
        "chain.mjs",
        &[arg("deploy-wallet"), arg("--rpc"), anvil.rpc.clone(), arg("--owner"), address_of(&owner_key)],
    )
    .await;
    let wallet = wallet["wallet"].as_str().expect("wallet").to_owned();
    let rpc = anvil.rpc.clone();
    let s = TestServer::start_with(Backend::Sqlite, move |cfg| cfg.rpc_url = Some(rpc)).await;
    let (old_token, number) = s.grant(&wallet, 30).await;
    let issued = fresh_nonce(&s).await;
    let message = issued["message"].as_str().expect("message").to_owned();
    let by_owner =
        node("sign.mjs", &[arg("personal"), arg("--key"), owner_key.clone(), arg("--message"), message]).await;
    let recovered: Value = s
        .post(
            "/sms/auth",
            None,
            &json!({"wallet": wallet, "nonce": issued["nonce"], "signature": by_owner["signature"]}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(recovered["number"], number.as_str(), "{recovered}");
    expect_error(s.get("/sms/number", Some(&old_token)).await, 401, "unauthorized").await;
    // Another key's signature: the wallet says no.
    let issued = fresh_nonce(&s).await;
    let by_other = node(
        "sign.mjs",
        &[
            arg("personal"),
            arg("--key"),
            key(0xd2),
            arg("--message"),
            issued["message"].as_str().expect("m").to_owned(),
        ],
    )
    .await;
    expect_error(
        s.post(
            "/sms/auth",
            None,
            &json!({"wallet": wallet, "nonce": issued["nonce"], "signature": by_other["signature"]}),
        )
        .await,
        401,
        "signature_mismatch",
    )
    .await;
    s.stop().await;
}

// The committed artifact of our token, loaded with `sol!`: the calls the relayer encodes must
// be the token's own functions.
alloy_sol_types::sol!(TestEip3009, "contracts/TestEip3009.json");

#[test]
fn the_token_artifact_has_the_functions_settlement_calls() {
    use alloy_sol_types::SolCall;
    // Both overloads: bytes signature (0xcf092995) and v, r, s (0xe3ee160e, what
    // `payments::settlement::Chain` sends).
    let mut selectors = [
        TestEip3009::transferWithAuthorization_0Call::SELECTOR,
        TestEip3009::transferWithAuthorization_1Call::SELECTOR,
    ];
    selectors.sort();
    assert_eq!(selectors, [[0xcf, 0x09, 0x29, 0x95], [0xe3, 0xee, 0x16, 0x0e]]);
    assert_eq!(
        TestEip3009::authorizationStateCall::SELECTOR,
        alloy_primitives::keccak256("authorizationState(address,bytes32)")[..4]
    );
    assert!(TestEip3009::BYTECODE.len() > 1000, "deployable bytecode is committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_is_refused_across_two_server_processes() {
    let s = sandbox(Backend::Postgres, 5).await;
    // A second server: the real binary, its own process, on the same database.
    let second = support::ServeProcess::spawn(
        &[],
        &[
            ("AGENTLINE_LISTEN", "127.0.0.1:0"),
            ("AGENTLINE_DATABASE_URL", &s.db_url),
            ("AGENTLINE_NETWORK", "eip155:84532"),
            ("AGENTLINE_ASSET", SANDBOX_TOKEN),
            ("AGENTLINE_TOKEN_NAME", TOKEN_NAME),
            ("AGENTLINE_PAY_TO", PAY_TO),
            ("AGENTLINE_LOG", "info"),
        ],
    );
    let other = second.base.clone();
    let value = valid_header(&Pay::new(key(0xf1), SANDBOX_TOKEN, 84532)).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let url = if i % 2 == 0 { s.url("/sms/subscribe") } else { format!("{other}/sms/subscribe") };
            let (http, value) = (s.http.clone(), value.clone());
            tokio::spawn(async move {
                http.post(url).header("payment-signature", value).send().await.expect("post").status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    second.terminate();
    assert!(second.wait().0.success());
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 402), "{statuses:?}");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments").await, 1);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM subscriptions").await, 1);
    s.stop().await;
}

//! Discovery documents, checked with independent validators (tests/peers/validate.py:
//! openapi-spec-validator for OpenAPI 3.1, jsonschema for the Bazaar block) and against the
//! server's own behaviour (the terms in the 402, the tools the MCP endpoint serves).

mod support;

use base64::Engine;
use serde_json::Value;
use support::peers::{ensure_installed, peers_dir};
use support::{Backend, TestServer};

/// Runs `python3 validate.py ARGS` on JSON values written to temporary files.
async fn validate(kind: &str, docs: &[&Value]) -> Value {
    ensure_installed();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec![kind.to_owned()];
    for (i, doc) in docs.iter().enumerate() {
        let path = dir.path().join(format!("{i}.json"));
        std::fs::write(&path, doc.to_string()).expect("write");
        args.push(path.display().to_string());
    }
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").arg("validate.py").args(args).current_dir(peers_dir()).output()
    })
    .await
    .expect("task")
    .expect("python3 runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "validator printed no JSON: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_documents_validate_and_agree_with_the_server() {
    let s = TestServer::start(Backend::Sqlite).await;

    // OpenAPI 3.1, validated; and a broken copy is refused (the validator can fail).
    let doc = json_of(s.get("/openapi.json", None).await).await;
    assert_eq!(validate("openapi", &[&doc]).await, serde_json::json!({"valid": true}));
    let mut broken = doc.clone();
    broken["paths"]["/sms/send"]["post"]["responses"] = Value::String("nope".into());
    assert_eq!(validate("openapi", &[&broken]).await["valid"], false);

    // The 402 challenge and the documents name the same terms.
    let resp = s.post("/sms/subscribe", None, &serde_json::json!({})).await;
    assert_eq!(resp.status(), 402);
    let header = resp.headers()["payment-required"].to_str().expect("ascii").to_owned();
    let body = json_of(resp).await;
    let v2: Value = serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(header).expect("base64"))
        .expect("json");
    let offer = &v2["accepts"][0];
    let pay = &doc["paths"]["/sms/subscribe"]["post"]["x-payment-info"];
    assert_eq!(pay["amount"], offer["amount"]);
    assert_eq!(pay["currency"], offer["asset"]);
    assert_eq!(pay["network"], offer["network"]);
    assert_eq!(pay["payTo"], offer["payTo"]);
    assert_eq!(pay["price"], serde_json::json!({"mode": "fixed", "currency": "USD", "amount": "1000.00"}));
    assert!(doc["paths"]["/sms/subscribe"]["post"]["responses"]["402"].is_object());
    assert_eq!(doc["x-service-info"]["docs"]["llms"], format!("{}/llms.txt", s.base));

    // Bazaar: in the header and the body, and its schema validates its info.
    for challenge in [&v2, &body] {
        let bazaar = &challenge["extensions"]["bazaar"];
        assert_eq!(bazaar["info"]["input"]["method"], "POST");
        assert_eq!(validate("schema", &[&bazaar["schema"], &bazaar["info"]]).await, serde_json::json!({"valid": true}));
        let mut wrong = bazaar["info"].clone();
        wrong["input"]["method"] = "GET".into();
        assert_eq!(validate("schema", &[&bazaar["schema"], &wrong]).await["valid"], false);
    }

    // /.well-known/x402 (both spellings) points at the paid resource.
    let x402 = json_of(s.get("/.well-known/x402", None).await).await;
    assert_eq!(x402, json_of(s.get("/.well-known/x402.json", None).await).await);
    assert_eq!(x402["resources"][0], v2["resource"]["url"]);
    assert!(x402["instructions"].as_str().expect("text").contains("1000.00 USDC"));

    // The MCP server card lists exactly the tools /mcp serves.
    let card = json_of(s.get("/.well-known/mcp.json", None).await).await;
    assert_eq!(card["transport"]["url"], format!("{}/mcp", s.base));
    let names: Vec<&str> =
        card["tools"].as_array().expect("tools").iter().map(|t| t["name"].as_str().expect("n")).collect();
    assert_eq!(names.len(), 10);
    for name in ["subscribe", "wait_for_code", "receive_sms", "place_call"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(card["tools"].as_array().expect("tools").iter().all(|t| t["inputSchema"]["type"] == "object"));

    // llms-full.txt: the guide, the first five minutes and the voice protocol, with this URL.
    let full = s.get("/llms-full.txt", None).await.text().await.expect("text");
    assert!(full.contains("An agent's first five minutes"));
    assert!(full.contains("Voice: calls, presence and the audio stream WebSocket"));
    assert!(full.contains(&format!("{}/sms/subscribe", s.base)));
    assert!(!full.contains("{base_url}"));
    s.stop().await;
}

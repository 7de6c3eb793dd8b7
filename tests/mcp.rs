//! The MCP server at /mcp, driven by the official TypeScript SDK client (tests/peers/mcp.mjs): an
//! agent with only MCP subscribes with an x402 payment it signs itself, then texts, receives with
//! progress notifications, waits for a code another agent sends, and places and hangs up a call.
//! The stateless 2026-07-28 protocol is exercised with raw HTTP.

mod support;

use serde_json::{Value, json};
use support::peers::{arg, node};
use support::{Backend, TestServer, wallet};

/// A payer key that nothing else uses (anvil account 5; the sandbox verifies, moves nothing).
const PAYER_KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";

fn tool_names(out: &Value) -> Vec<String> {
    out["tools"].as_array().expect("tools").iter().map(|t| t["name"].as_str().expect("name").to_owned()).collect()
}

both!(an_agent_with_only_mcp);

async fn an_agent_with_only_mcp(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.sim.answer_delay_ms = 20).await;
    let (sender_token, sender_number) = s.grant(&wallet(9), 30).await;
    let out = node(
        "mcp.mjs",
        &[
            arg("--url"),
            s.url("/mcp"),
            arg("--key"),
            arg(PAYER_KEY),
            arg("--sender-token"),
            sender_token.clone(),
            arg("--echo"),
            arg("+15005550006"),
        ],
    )
    .await;
    assert!(out["error"].is_null(), "the MCP agent failed: {}", out["error"]);

    let mut names = tool_names(&out);
    names.sort();
    let expected = [
        "get_number",
        "hangup_call",
        "list_calls",
        "list_messages",
        "place_call",
        "receive_sms",
        "send_sms",
        "subscribe",
        "subscription_status",
        "wait_for_code",
    ];
    assert_eq!(names, expected);
    for tool in out["tools"].as_array().expect("tools") {
        assert!(tool["description"].as_str().expect("description").len() > 40, "{tool}");
    }

    // Paid over the x402 MCP transport.
    assert_eq!(out["unpaid"]["isError"], true);
    assert_eq!(out["unpaid"]["structured"]["x402Version"], 2);
    assert!(out["unpaid"]["text"].as_str().expect("text").contains("accepts"));
    let paid = &out["paid"]["structured"];
    assert!(paid["token"].as_str().is_some_and(|t| t.len() > 20), "{}", out["paid"]);
    assert!(out["paid"]["meta"]["x402/payment-response"].is_object(), "{}", out["paid"]);
    let number = paid["number"].as_str().expect("number");
    assert_eq!(out["number"]["number"], number);
    assert_eq!(out["status"]["active"], true);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments").await, 1);

    // Long-polls report progress while they wait.
    assert_eq!(out["emptyReceive"]["structured"]["count"], 0);
    assert!(!out["emptyReceive"]["progress"].as_array().expect("progress").is_empty(), "{}", out["emptyReceive"]);
    assert_eq!(out["codeSendStatus"], 200);
    assert_eq!(out["code"]["structured"]["code"], "314159");
    assert_eq!(out["code"]["structured"]["sender"], sender_number.as_str());
    assert!(out["code"]["progress"].as_u64().expect("n") >= 1);

    // The plain message is left for receive_sms, and repeated when asked with an earlier cursor.
    assert_eq!(out["plainSent"], 200);
    assert_eq!(out["receive"]["count"], 1);
    assert_eq!(out["receive"]["messages"][0]["body"], "hello from another agent");
    let again: Vec<&str> = out["receiveAgain"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["body"].as_str().expect("body"))
        .collect();
    assert!(again.contains(&"hello from another agent"), "{again:?}");
    assert!(out["send"]["message_id"].as_str().expect("id").starts_with("msg_"));
    assert!(out["messages"]["messages"].as_array().expect("history").len() >= 3);

    // A call placed and hung up.
    assert!(out["call"]["stream_url"].as_str().expect("url").starts_with("ws://"));
    assert_eq!(out["hangup"]["status"], "hangup_sent");
    assert_eq!(out["calls"]["calls"][0]["call_id"], out["call"]["call_id"]);

    // Errors are tool errors with the REST error codes.
    assert_eq!(out["badArgs"]["isError"], true);
    assert_eq!(out["badArgs"]["structuredContent"]["error"], "invalid_request");
    assert_eq!(out["stranger"]["isError"], true);
    assert_eq!(out["stranger"]["structuredContent"]["error"], "unauthorized");
    s.stop().await;
}

/// One JSON-RPC response from a streamable-HTTP answer (plain JSON or an SSE stream).
fn rpc_result(body: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return v;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("result").is_some() || v.get("error").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC result in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stateless_2026_07_28_protocol() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (token, number) = s.grant(&wallet(1), 30).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw-http", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let post = |method: &'static str, name: Option<&'static str>, params: Value| {
        let mut req = s
            .http
            .post(s.url("/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", method)
            .bearer_auth(&token)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
        if let Some(name) = name {
            req = req.header("Mcp-Name", name);
        }
        async move {
            let resp = req.send().await.expect("POST /mcp");
            let status = resp.status();
            let body = resp.text().await.expect("body");
            assert_eq!(status, 200, "{body}");
            rpc_result(&body)
        }
    };
    let listed = post("tools/list", None, json!({"_meta": meta})).await;
    assert_eq!(listed["result"]["tools"].as_array().expect("tools").len(), 10, "{listed}");
    let called =
        post("tools/call", Some("get_number"), json!({"name": "get_number", "arguments": {}, "_meta": meta})).await;
    assert_eq!(called["result"]["structuredContent"]["number"], number.as_str(), "{called}");
    // A Host that is not ours is refused (DNS rebinding guard).
    let evil = s
        .http
        .post(s.url("/mcp"))
        .header("Host", "evil.example")
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(evil.status(), 403);
    s.stop().await;
}

/// The official MCP Python SDK (tests/peers/mcp_client.py) over a 2025-11-25 session: lists the
/// tools, calls one, is refused with the REST error code for the same input, and leaves the
/// session cleanly (DELETE /mcp answered 204, so the SDK logs no failed termination).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_client_opens_uses_and_closes_a_session() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (token, number) = s.grant(&wallet(3), 30).await;
    support::peers::ensure_installed();
    let (url, bearer) = (s.url("/mcp"), token.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg("mcp_client.py")
            .args(["--url", &url, "--token", &bearer])
            .current_dir(support::peers::peers_dir())
            .output()
            .expect("python3 mcp_client.py runs")
    })
    .await
    .expect("peer task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mcp_client.py failed ({:?}): {stdout}\nstderr: {stderr}", out.status);
    assert!(!stderr.contains("Session termination failed"), "stderr: {stderr}");
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("one JSON line");

    assert_eq!(result["protocol"], "2025-11-25", "{result}");
    assert_eq!(result["tools"].as_array().expect("tools").len(), 10, "{result}");
    assert_eq!(result["ok"]["isError"], false, "{result}");
    assert_eq!(result["ok"]["structured"]["number"], number.as_str(), "{result}");

    // The same input over REST: the tool error carries its code and message.
    let rest = s.post("/sms/send", Some(&token), &json!({"to": "12345", "body": "hello"})).await;
    let rest = support::expect_error(rest, 400, "invalid_request").await;
    assert_eq!(result["bad"]["isError"], true, "{result}");
    assert_eq!(result["bad"]["structured"]["error"], "invalid_request", "{result}");
    assert_eq!(result["bad"]["structured"]["message"], rest["message"], "{result}");
    s.stop().await;
}

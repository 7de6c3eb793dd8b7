//! `GET /sms/code`: the next one-time code, long-polled, claimed alone.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Backend, TestServer, expect_error, wallet};

both!(waits_for_the_next_code_and_leaves_other_messages);

async fn waits_for_the_next_code_and_leaves_other_messages(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (token_a, num_a) = s.grant(&wallet(1), 30).await;
    let (token_b, _num_b) = s.grant(&wallet(2), 30).await;
    let num_b = _num_b;

    // B waits first; A's plain message does not answer it, the code does.
    let waiting = {
        let http = s.http.clone();
        let url = s.url("/sms/code?wait=20");
        let token = token_b.clone();
        tokio::spawn(async move { http.get(url).bearer_auth(token).send().await.expect("code").json::<Value>().await })
    };
    let send = |body: &'static str| {
        let (s, token, to) = (&s, token_a.clone(), num_b.clone());
        async move {
            let resp = s.post("/sms/send", Some(&token), &json!({"to": to, "body": body})).await;
            assert_eq!(resp.status(), 200);
        }
    };
    send("hello there, no digits").await;
    send("Your Acme verification code is 482-913. It expires in 10 minutes.").await;
    let got = waiting.await.expect("task").expect("json");
    assert_eq!(got["code"], "482913");
    assert_eq!(got["sender"], num_a.as_str());
    assert!(got["message_id"].as_str().expect("id").starts_with("msg_"));

    // The plain message is still there for /sms/receive; the code message was claimed.
    let received: Value = s.get("/sms/receive", Some(&token_b)).await.json().await.expect("json");
    assert_eq!(received["count"], 1);
    assert_eq!(received["messages"][0]["body"], "hello there, no digits");

    // Already-waiting codes are answered at once, once; a sender filter applies.
    send("Code 5521").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let filtered: Value = loop {
        // The on-net delivery is asynchronous: poll with a short wait until it is in.
        let v: Value = s.get("/sms/code?wait=1&from=ACME", Some(&token_b)).await.json().await.expect("json");
        assert!(v["code"].is_null(), "a filter on another sender finds nothing");
        let any: Value = s.get("/sms/code?wait=2", Some(&token_b)).await.json().await.expect("json");
        if !any["code"].is_null() || tokio::time::Instant::now() > deadline {
            break any;
        }
    };
    assert_eq!(filtered["code"], "5521");
    let again: Value = s.get("/sms/code", Some(&token_b)).await.json().await.expect("json");
    assert!(again["code"].is_null(), "each code is returned once: {again}");
    let digits_only = num_a.trim_start_matches('+').to_owned();
    send("PIN 7788").await;
    let by_sender: Value =
        s.get(&format!("/sms/code?wait=10&from={digits_only}"), Some(&token_b)).await.json().await.expect("json");
    assert_eq!(by_sender["code"], "7788", "a sender given without + matches");

    expect_error(s.get("/sms/code?wait=abc", Some(&token_b)).await, 400, "invalid_request").await;
    expect_error(s.get("/sms/code?wait=999", Some(&token_b)).await, 400, "invalid_request").await;
    expect_error(s.get("/sms/code", None).await, 401, "unauthorized").await;
    s.stop().await;
}

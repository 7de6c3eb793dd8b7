//! The foundation contract end to end: the real server on 127.0.0.1:0, a real HTTP client,
//! every test on SQLite and on Postgres.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::{ADMIN_KEY, Backend, TestServer, expect_error, wallet};

both!(
    operations_endpoints,
    errors_for_unknown_routes_and_methods,
    availability_and_waitlist,
    demo_writes_nothing,
    admin_api,
    comp_grant_renewal_and_pool_exhaustion,
    bearer_auth_failures,
    expired_and_revoked_subscriptions,
    two_agents_text_each_other,
    long_poll_wakes_on_arrival,
    a_long_poll_that_hangs_up_leaves_its_message_for_the_next,
    concurrent_receivers_get_each_message_once,
    history_pagination_without_gaps_or_duplicates,
    history_filters_and_bad_parameters,
    send_rejects_bad_input,
    receive_rejects_bad_parameters,
    another_wallets_data_is_invisible,
    restart_resumes_queued_and_never_resends_interrupted,
    readiness_fails_and_errors_stay_generic_when_the_database_is_gone,
);

async fn json(resp: reqwest::Response) -> Value {
    assert!(resp.status().is_success(), "status {}", resp.status());
    resp.json().await.expect("json body")
}

async fn operations_endpoints(backend: Backend) {
    let s = TestServer::start(backend).await;
    let health = json(s.get("/health", None).await).await;
    assert_eq!(health["status"], "ok");
    assert!(health["uptime"].is_u64());
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));

    let ready = json(s.get("/health/ready", None).await).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["database"]["status"], "ok");
    assert_eq!(ready["checks"]["sms_network"]["name"], "sim");

    let (token, _) = s.grant(&wallet(1), 30).await;
    let resp = s.post("/sms/send", Some(&token), &json!({"to": "+15005550006", "body": "hi"})).await;
    assert_eq!(resp.status(), 200);
    let metrics = s.get("/metrics", None).await.text().await.expect("text");
    assert!(
        metrics.contains("agentline_http_requests_total{route=\"/sms/send\",method=\"POST\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("agentline_sms_messages_total{direction=\"outbound\",status=\"queued\"} 1"), "{metrics}");
    assert!(metrics.contains("agentline_pool_numbers{state=\"free\"} 19"), "{metrics}");
    assert!(metrics.contains("agentline_pool_numbers{state=\"assigned\"} 1"), "{metrics}");

    let doc = json(s.get("/openapi.json", None).await).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], s.base.as_str());
    let seed: Value = serde_json::from_str(include_str!("../fixtures/contract-openapi.json")).expect("seed parses");
    for (path, ops) in seed["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("ops") {
            let ours = &doc["paths"][path][method];
            assert!(ours["operationId"].is_string(), "{method} {path} missing or without operationId");
            for status in op["responses"].as_object().expect("responses").keys() {
                assert!(ours["responses"][status].is_object(), "{method} {path} {status} missing");
            }
        }
    }
    for served in
        ["/health", "/health/ready", "/metrics", "/openapi.json", "/llms.txt", "/admin/numbers", "/admin/subscriptions"]
    {
        assert!(doc["paths"][served].is_object(), "{served} undocumented");
    }

    let llms = s.get("/llms.txt", None).await.text().await.expect("text");
    assert!(llms.contains(&s.base), "llms.txt names the public URL");
    assert!(!llms.contains("{base_url}"));
    s.stop().await;
}

async fn errors_for_unknown_routes_and_methods(backend: Backend) {
    let s = TestServer::start(backend).await;
    expect_error(s.get("/nope", None).await, 404, "not_found").await;
    expect_error(s.get("/sms/send", None).await, 405, "method_not_allowed").await;
    expect_error(s.post("/sms/voice/dial", None, &json!({})).await, 401, "unauthorized").await;
    s.stop().await;

    // Without an admin key the admin API does not exist.
    let s = TestServer::start_with(backend, |c| c.admin_key = None).await;
    expect_error(s.get("/admin/numbers", Some(ADMIN_KEY)).await, 404, "not_found").await;
    s.stop().await;
}

async fn availability_and_waitlist(backend: Backend) {
    let s = TestServer::start(backend).await;
    assert_eq!(json(s.get("/sms/availability", None).await).await, json!({"available": 20}));
    s.grant(&wallet(1), 30).await;
    assert_eq!(json(s.get("/sms/availability", None).await).await, json!({"available": 19}));

    let first = json(s.post("/sms/waitlist", None, &json!({"email": "Agent@Example.com"})).await).await;
    assert_eq!(first["status"], "added");
    let again = json(s.post("/sms/waitlist", None, &json!({"email": "agent@example.com "})).await).await;
    assert_eq!(again["registered_at"], first["registered_at"], "idempotent: original registered_at");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM waitlist").await, 1);

    for bad in
        [json!({}), json!({"email": "nope"}), json!({"email": 42}), json!({"email": "a@b"}), json!({"email": ""})]
    {
        expect_error(s.post("/sms/waitlist", None, &bad).await, 400, "invalid_email").await;
    }
    expect_error(
        s.post_raw("/sms/waitlist", None, Some("application/json"), b"{".to_vec()).await,
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        s.post_raw("/sms/waitlist", None, Some("text/plain"), b"x".to_vec()).await,
        415,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(s.scalar("SELECT COUNT(*) FROM waitlist").await, 1);
    s.stop().await;
}

async fn table_counts(s: &TestServer) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in ["subscriptions", "numbers", "tokens", "messages", "waitlist", "audit"] {
        counts.push(s.scalar(&format!("SELECT COUNT(*) FROM {table}")).await);
    }
    counts
}

async fn demo_writes_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let before = table_counts(&s).await;
    let demo = json(s.post_raw("/sms/demo", None, None, Vec::new()).await).await;
    assert_eq!(demo["demo"], true);
    for key in ["token", "number", "expires_at", "renewed"] {
        assert!(!demo["simulated_subscribe"][key].is_null(), "{key}");
    }
    assert_eq!(demo["simulated_send"]["status"], "queued");
    assert_eq!(demo["simulated_receive"]["count"], 1);
    assert_eq!(table_counts(&s).await, before);
    s.stop().await;
}

async fn admin_api(backend: Backend) {
    let s = TestServer::start(backend).await;
    expect_error(s.get("/admin/numbers", None).await, 401, "unauthorized").await;
    expect_error(s.get("/admin/numbers", Some("wrong-key-wrong-key")).await, 401, "unauthorized").await;
    expect_error(
        s.post("/admin/numbers", Some("an_x"), &json!({"numbers": ["+15005550001"]})).await,
        401,
        "unauthorized",
    )
    .await;

    let added = json(
        s.post(
            "/admin/numbers",
            Some(ADMIN_KEY),
            &json!({"numbers": ["+15005550001", "+15005550002", "+15005550001", "+12025550100"]}),
        )
        .await,
    )
    .await;
    assert_eq!(added, json!({"added": 2, "ignored": 1}));
    // One bad entry: nothing is added.
    let body = expect_error(
        s.post("/admin/numbers", Some(ADMIN_KEY), &json!({"numbers": ["+15005550003", "5005550004"]})).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(body["message"].as_str().expect("msg").contains("5005550004"));
    expect_error(s.post("/admin/numbers", Some(ADMIN_KEY), &json!({"numbers": []})).await, 400, "invalid_request")
        .await;
    expect_error(
        s.post("/admin/numbers", Some(ADMIN_KEY), &json!({"numbers": "+15005550003"})).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(s.scalar("SELECT COUNT(*) FROM numbers WHERE e164 = '+15005550003'").await, 0);

    let list = json(s.get("/admin/numbers", Some(ADMIN_KEY)).await).await;
    assert_eq!(list["counts"], json!({"free": 22, "reserved": 0, "assigned": 0, "quarantined": 0}));
    assert_eq!(list["numbers"].as_array().expect("array").len(), 22);

    for bad in [
        json!({"wallet": "0x12", "days": 30}),
        json!({"wallet": wallet(1), "days": 0}),
        json!({"wallet": wallet(1)}),
        json!({"wallet": wallet(1), "days": -3}),
        json!({"wallet": wallet(1), "days": 30, "extra": 1}),
    ] {
        expect_error(s.post("/admin/subscriptions", Some(ADMIN_KEY), &bad).await, 400, "invalid_request").await;
    }
    let (_, number) = s.grant(&wallet(1), 30).await;
    let list = json(s.get("/admin/numbers", Some(ADMIN_KEY)).await).await;
    let entry = list["numbers"]
        .as_array()
        .expect("array")
        .iter()
        .find(|n| n["number"] == number.as_str())
        .expect("listed")
        .clone();
    assert_eq!(entry["state"], "assigned");
    assert_eq!(entry["wallet"], wallet(1));
    // Admin actions are audited (seeding + 1 add + 1 grant), failed ones are not.
    assert_eq!(s.scalar("SELECT COUNT(*) FROM audit WHERE actor = 'admin-api'").await, 2);
    assert_eq!(s.scalar("SELECT COUNT(*) FROM audit WHERE action = 'subscriptions.grant'").await, 1);
    s.stop().await;
}

async fn comp_grant_renewal_and_pool_exhaustion(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.sim.seed_numbers = 2).await;
    let first =
        json(s.post("/admin/subscriptions", Some(ADMIN_KEY), &json!({"wallet": wallet(1), "days": 30})).await).await;
    assert_eq!(first["renewed"], false);
    assert!(first["token"].as_str().expect("token").starts_with("an_"));
    let renewed = json(
        s.post(
            "/admin/subscriptions",
            Some(ADMIN_KEY),
            &json!({"wallet": wallet(1).to_uppercase().replace("0X", "0x"), "days": 10}),
        )
        .await,
    )
    .await;
    assert_eq!(renewed["renewed"], true);
    assert_eq!(renewed["number"], first["number"]);
    let exp1 = agentline::clock::parse_rfc3339(first["expires_at"].as_str().expect("t")).expect("rfc3339");
    let exp2 = agentline::clock::parse_rfc3339(renewed["expires_at"].as_str().expect("t")).expect("rfc3339");
    assert_eq!(exp2 - exp1, 10 * 86_400_000, "renewal extends from the current expiry");
    // Both tokens work; tokens are stored only as hashes.
    for t in [&first["token"], &renewed["token"]] {
        let n = json(s.get("/sms/number", Some(t.as_str().expect("t"))).await).await;
        assert_eq!(n["number"], first["number"]);
        assert_eq!(n["status"], "active");
    }
    let token = first["token"].as_str().expect("t");
    assert_eq!(
        s.scalar(&format!("SELECT COUNT(*) FROM tokens WHERE CAST(token_hash AS TEXT) LIKE '%{}%'", &token[3..])).await,
        0
    );

    s.grant(&wallet(2), 30).await;
    let body = expect_error(
        s.post("/admin/subscriptions", Some(ADMIN_KEY), &json!({"wallet": wallet(3), "days": 30})).await,
        503,
        "pool_exhausted",
    )
    .await;
    assert_eq!(body["available"], 0);
    assert_eq!(body["join_waitlist"], "/sms/waitlist");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM subscriptions").await, 2, "nothing half-written");
    // A renewal needs no free number.
    json(s.post("/admin/subscriptions", Some(ADMIN_KEY), &json!({"wallet": wallet(2), "days": 30})).await).await;
    s.stop().await;
}

async fn bearer_auth_failures(backend: Backend) {
    let s = TestServer::start(backend).await;
    let unknown = format!("an_{}", "A".repeat(32));
    let cases: Vec<(Option<String>, Option<&str>)> = vec![
        (None, None),
        (Some("Basic abc".to_owned()), None),
        (Some("Bearer".to_owned()), None),
        (Some("Bearer not-a-token".to_owned()), None),
        (Some(format!("Bearer {unknown}")), None),
        (Some(format!("Bearer {}x", unknown)), None),
    ];
    for (header, _) in cases {
        for (method, path) in
            [("GET", "/sms/number"), ("POST", "/sms/send"), ("GET", "/sms/receive"), ("GET", "/sms/messages")]
        {
            let mut req = match method {
                "GET" => s.http.get(s.url(path)),
                _ => s.http.post(s.url(path)).json(&json!({"to": "+15005550006", "body": "x"})),
            };
            if let Some(h) = &header {
                req = req.header("authorization", h);
            }
            expect_error(req.send().await.expect("send"), 401, "unauthorized").await;
        }
    }
    s.stop().await;
}

async fn expired_and_revoked_subscriptions(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (token, number) = s.grant(&wallet(1), 30).await;
    let now = agentline::clock::now_ms();
    // Changes made behind the service's back (SQL by hand, another node) take effect within
    // the auth cache's lifetime; wait for them with a deadline.
    async fn eventually_status(s: &TestServer, token: &str, want: u16) -> reqwest::Response {
        let deadline = tokio::time::Instant::now() + agentline::subscriptions::AUTH_CACHE_TTL * 5;
        loop {
            let resp = s.get("/sms/number", Some(token)).await;
            if resp.status().as_u16() == want || tokio::time::Instant::now() > deadline {
                return resp;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    // Expired a day ago: inside the grace period, read-only.
    s.exec(&format!("UPDATE subscriptions SET expires_at = {}", now - 86_400_000)).await;
    let deadline = tokio::time::Instant::now() + agentline::subscriptions::AUTH_CACHE_TTL * 5;
    let info = loop {
        let info = json(s.get("/sms/number", Some(&token)).await).await;
        if info["status"] == "expired" || tokio::time::Instant::now() > deadline {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(info["status"], "expired");
    assert_eq!(info["number"], number.as_str());
    expect_error(
        s.post("/sms/send", Some(&token), &json!({"to": "+15005550006", "body": "x"})).await,
        402,
        "no_active_subscription",
    )
    .await;
    // Past the grace period the token is dead, whatever the cache holds.
    s.exec(&format!("UPDATE subscriptions SET expires_at = {}", now - 31 * 86_400_000)).await;
    expect_error(eventually_status(&s, &token, 401).await, 401, "unauthorized").await;
    // A revoked token is dead too.
    s.exec(&format!("UPDATE subscriptions SET expires_at = {}", now + 86_400_000)).await;
    assert_eq!(eventually_status(&s, &token, 200).await.status(), 200);
    s.exec(&format!("UPDATE tokens SET revoked_at = {now}")).await;
    expect_error(eventually_status(&s, &token, 401).await, 401, "unauthorized").await;
    // A grant through the service is seen at once (the cache forgets that subscription).
    let (token2, _) = s.grant(&wallet(2), 30).await;
    s.exec(&format!("UPDATE subscriptions SET expires_at = {} WHERE wallet = '{}'", now - 86_400_000, wallet(2))).await;
    assert_eq!(
        json(s.get("/sms/number", Some(&token2)).await).await["status"],
        "expired",
        "first read hits the database"
    );
    s.grant(&wallet(2), 30).await;
    assert_eq!(json(s.get("/sms/number", Some(&token2)).await).await["status"], "active", "renewal seen at once");
    s.stop().await;
}

/// Polls history until `message_id` reaches `status` (the simulator delivers within a second).
async fn wait_for_status(s: &TestServer, token: &str, message_id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = json(s.get("/sms/messages?direction=sent&limit=100", Some(token)).await).await;
        let messages = page["messages"].as_array().expect("array");
        let found = messages.iter().find(|m| m["message_id"] == message_id);
        if let Some(m) = found.filter(|m| m["status"] == status) {
            return m.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{message_id} never reached {status}: {found:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn two_agents_text_each_other(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (alice, alice_number) = s.grant(&wallet(1), 365).await;
    let (bob, bob_number) = s.grant(&wallet(2), 365).await;

    let sent =
        json(s.post("/sms/send", Some(&alice), &json!({"to": bob_number, "body": "Your code is 482913"})).await).await;
    assert_eq!(sent["status"], "queued");
    let message_id = sent["message_id"].as_str().expect("id").to_owned();
    assert!(message_id.starts_with("msg_"));
    assert_eq!(sent["segments"], 1);

    let got = json(s.get("/sms/receive?wait=10", Some(&bob)).await).await;
    assert_eq!(got["count"], 1);
    let m = &got["messages"][0];
    assert_eq!(m["from_number"], alice_number.as_str());
    assert_eq!(m["to_number"], bob_number.as_str());
    assert_eq!(m["body"], "Your code is 482913");
    assert!(m["received_at"].is_string());
    // Claimed once: the next receive is empty.
    assert_eq!(json(s.get("/sms/receive", Some(&bob)).await).await["count"], 0);

    let delivered = wait_for_status(&s, &alice, &message_id, "delivered").await;
    assert_eq!(delivered["from_number"], alice_number.as_str());
    assert_eq!(delivered["to_number"], bob_number.as_str());
    assert_eq!(delivered["delivered_at"], Value::Null, "delivered_at is for inbound claims");

    // Bob answers with a two-part message.
    let long = "x".repeat(200);
    let reply = json(s.post("/sms/send", Some(&bob), &json!({"to": alice_number, "body": long})).await).await;
    assert_eq!(reply["segments"], 2);
    let got = json(s.get("/sms/receive?wait=10", Some(&alice)).await).await;
    assert_eq!(got["messages"][0]["body"], long.as_str());

    let history = json(s.get("/sms/messages?direction=received", Some(&bob)).await).await;
    let received = &history["messages"][0];
    assert_eq!(received["direction"], "received");
    assert_eq!(received["status"], Value::Null);
    assert!(received["delivered_at"].is_string(), "claimed rows carry delivered_at");
    s.stop().await;
}

async fn long_poll_wakes_on_arrival(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
    let (alice, _) = s.grant(&wallet(1), 30).await;
    let (bob, bob_number) = s.grant(&wallet(2), 30).await;
    let waiter = {
        let s = s.clone();
        tokio::spawn(async move { json(s.get("/sms/receive?wait=30", Some(&bob)).await).await })
    };
    // The waiter is parked on the server (observable in /metrics) before the message is sent.
    metrics_show(&s, "agentline_sms_longpoll_waiting 1").await;
    let started = tokio::time::Instant::now();
    json(s.post("/sms/send", Some(&alice), &json!({"to": bob_number, "body": "wake up"})).await).await;
    let got = waiter.await.expect("waiter");
    assert_eq!(got["count"], 1, "the long-poll returned the message, not a timeout");
    assert_eq!(got["messages"][0]["body"], "wake up");
    assert!(started.elapsed() < Duration::from_secs(30));
    let metrics = s.get("/metrics", None).await.text().await.expect("text");
    assert!(metrics.contains("agentline_sms_longpoll_wakeup_seconds_count 1"), "{metrics}");
    // It was claimed for the parked long-poll in the transaction that stored it.
    assert!(metrics.contains("agentline_sms_longpoll_handoffs_total{outcome=\"handed\"} 1"), "{metrics}");
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM messages WHERE direction = 'received' AND delivered_at IS NOT NULL").await,
        1
    );
    Arc::into_inner(s).expect("sole owner").stop().await;
}

/// Waits until `/metrics` shows `line`.
async fn metrics_show(s: &TestServer, line: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !s.get("/metrics", None).await.text().await.expect("text").contains(line) {
        assert!(tokio::time::Instant::now() < deadline, "/metrics never showed {line}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn a_long_poll_that_hangs_up_leaves_its_message_for_the_next(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
    let (alice, _) = s.grant(&wallet(1), 30).await;
    let (bob, bob_number) = s.grant(&wallet(2), 30).await;
    let waiter = {
        let (s, bob) = (s.clone(), bob.clone());
        tokio::spawn(async move { s.get("/sms/receive?wait=30", Some(&bob)).await })
    };
    metrics_show(&s, "agentline_sms_longpoll_waiting 1").await;
    // The client hangs up: its connection closes and the server drops the parked request.
    waiter.abort();
    assert!(waiter.await.expect_err("aborted").is_cancelled());
    metrics_show(&s, "agentline_sms_longpoll_waiting 0").await;
    json(s.post("/sms/send", Some(&alice), &json!({"to": bob_number, "body": "still here"})).await).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let got = loop {
        let got = json(s.get("/sms/receive?wait=1", Some(&bob)).await).await;
        if got["count"] == 1 || tokio::time::Instant::now() >= deadline {
            break got;
        }
    };
    assert_eq!(got["messages"][0]["body"], "still here", "nobody claimed it for the departed long-poll");
    let metrics = s.get("/metrics", None).await.text().await.expect("text");
    assert!(!metrics.contains("agentline_sms_longpoll_handoffs_total{outcome=\"returned\"}"), "{metrics}");
    Arc::into_inner(s).expect("sole owner").stop().await;
}

async fn concurrent_receivers_get_each_message_once(backend: Backend) {
    const MESSAGES: usize = 120;
    const RECEIVERS: usize = 8;
    let s = Arc::new(TestServer::start(backend).await);
    let (alice, _) = s.grant(&wallet(1), 30).await;
    let (bob, bob_number) = s.grant(&wallet(2), 30).await;
    let claimed = Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let mut receivers = Vec::new();
    for _ in 0..RECEIVERS {
        let (s, bob, claimed) = (s.clone(), bob.clone(), claimed.clone());
        receivers.push(tokio::spawn(async move {
            loop {
                let got = json(s.get("/sms/receive?limit=7&wait=2", Some(&bob)).await).await;
                let ids: Vec<i64> =
                    got["messages"].as_array().expect("array").iter().map(|m| m["id"].as_i64().expect("id")).collect();
                let mut all = claimed.lock().expect("lock");
                all.extend(ids);
                if all.len() >= MESSAGES {
                    return;
                }
            }
        }));
    }
    let mut sends = Vec::new();
    for i in 0..MESSAGES {
        let (s, alice, to) = (s.clone(), alice.clone(), bob_number.clone());
        sends.push(tokio::spawn(async move {
            json(s.post("/sms/send", Some(&alice), &json!({"to": to, "body": format!("m{i}")})).await).await
        }));
    }
    for t in sends {
        t.await.expect("send task");
    }
    for r in receivers {
        tokio::time::timeout(Duration::from_secs(60), r).await.expect("receivers finish").expect("receiver");
    }
    let all = claimed.lock().expect("lock").clone();
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), MESSAGES, "no message delivered twice");
    assert_eq!(unique.len(), MESSAGES, "every message delivered");
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM messages WHERE direction = 'received' AND delivered_at IS NULL").await,
        0
    );
    Arc::into_inner(s).expect("sole owner").stop().await;
}

async fn history_pagination_without_gaps_or_duplicates(backend: Backend) {
    const SENT: usize = 57;
    let s = TestServer::start(backend).await;
    let (alice, _) = s.grant(&wallet(1), 30).await;
    let mut expected = Vec::new();
    for i in 0..SENT {
        let sent =
            json(s.post("/sms/send", Some(&alice), &json!({"to": "+15005550006", "body": format!("n{i}")})).await)
                .await;
        expected.push(sent["id"].as_i64().expect("id"));
    }
    // Ties on created_at are likely at this rate: the keyset includes the id.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/sms/messages?limit=7&cursor={c}"),
            None => "/sms/messages?limit=7".to_owned(),
        };
        let page = json(s.get(&path, Some(&alice)).await).await;
        let items = page["messages"].as_array().expect("array");
        assert!(items.len() <= 7);
        seen.extend(
            items.iter().map(|m| (m["created_at"].as_str().expect("t").to_owned(), m["id"].as_i64().expect("id"))),
        );
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, SENT.div_ceil(7));
    let ids: Vec<i64> = seen.iter().map(|(_, id)| *id).collect();
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    expected.sort_unstable();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected, "no gaps");
    let mut ordered = seen.clone();
    ordered.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, ordered, "newest first");
    // Default limit 50, capped at 100.
    assert_eq!(json(s.get("/sms/messages", Some(&alice)).await).await["messages"].as_array().expect("a").len(), 50);
    assert_eq!(
        json(s.get("/sms/messages?limit=500", Some(&alice)).await).await["messages"].as_array().expect("a").len(),
        SENT
    );
    s.stop().await;
}

async fn history_filters_and_bad_parameters(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (alice, alice_number) = s.grant(&wallet(1), 30).await;
    let (bob, bob_number) = s.grant(&wallet(2), 30).await;
    json(s.post("/sms/send", Some(&alice), &json!({"to": bob_number, "body": "one"})).await).await;
    json(s.post("/sms/send", Some(&bob), &json!({"to": alice_number, "body": "two"})).await).await;
    assert_eq!(json(s.get("/sms/receive?wait=10", Some(&alice)).await).await["count"], 1);

    let all = json(s.get("/sms/messages?direction=both", Some(&alice)).await).await;
    assert_eq!(all["messages"].as_array().expect("a").len(), 2);
    let sent = json(s.get("/sms/messages?direction=sent", Some(&alice)).await).await;
    assert_eq!(sent["messages"][0]["body"], "one");
    let received = json(s.get("/sms/messages?direction=received", Some(&alice)).await).await;
    assert_eq!(received["messages"][0]["body"], "two");

    let created = all["messages"][1]["created_at"].as_str().expect("t").to_owned();
    let newest = all["messages"][0]["created_at"].as_str().expect("t").to_owned();
    let only_first = json(s.get(&format!("/sms/messages?since={created}&until={created}"), Some(&alice)).await).await;
    assert!(only_first["messages"].as_array().expect("a").iter().all(|m| m["created_at"] == created.as_str()));
    let future = json(s.get("/sms/messages?since=2999-01-01T00:00:00Z", Some(&alice)).await).await;
    assert_eq!(future["messages"].as_array().expect("a").len(), 0);
    assert_eq!(future["next_cursor"], Value::Null);
    let offset =
        json(s.get(&format!("/sms/messages?until={}", newest.replace('Z', "%2B00:00")), Some(&alice)).await).await;
    assert_eq!(offset["messages"].as_array().expect("a").len(), 2, "offsets are accepted");

    for bad in [
        "direction=up",
        "since=yesterday",
        "until=2026-13-01T00:00:00Z",
        "cursor=garbage!",
        "cursor=NDgyMHw0ODEw",
        "limit=0",
        "limit=abc",
        "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    ] {
        expect_error(s.get(&format!("/sms/messages?{bad}"), Some(&alice)).await, 400, "invalid_request").await;
    }
    s.stop().await;
}

async fn send_rejects_bad_input(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.limits.max_body_bytes = 4096).await;
    let (alice, _) = s.grant(&wallet(1), 30).await;
    let before = s.scalar("SELECT COUNT(*) FROM messages").await;
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (Some("application/json"), b"{\"to\": ".to_vec(), 400, "invalid_request"),
        (Some("application/json"), b"[]".to_vec(), 400, "invalid_request"),
        (Some("application/json"), br#"{"to": 15005550006, "body": "x"}"#.to_vec(), 400, "invalid_request"),
        (Some("application/json"), br#"{"body": "x"}"#.to_vec(), 400, "invalid_request"),
        (Some("application/json"), br#"{}"#.to_vec(), 400, "invalid_request"),
        (
            Some("application/json"),
            br#"{"to": "+15005550006", "body": "x", "from": "+1999"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (Some("application/json"), br#"{"to": "15005550006", "body": "x"}"#.to_vec(), 400, "invalid_request"),
        (Some("application/json"), br#"{"to": "+1500555000612345", "body": "x"}"#.to_vec(), 400, "invalid_request"),
        (Some("application/json"), br#"{"to": "+15005550006", "body": ""}"#.to_vec(), 400, "invalid_request"),
        (Some("application/json"), br#"{"to": "+15005550006", "body": null}"#.to_vec(), 400, "invalid_request"),
        (Some("text/plain"), br#"{"to": "+15005550006", "body": "x"}"#.to_vec(), 415, "unsupported_media_type"),
        (None, Vec::new(), 415, "unsupported_media_type"),
        (
            Some("application/json"),
            format!(r#"{{"to": "+15005550006", "body": "{}"}}"#, "x".repeat(5000)).into_bytes(),
            413,
            "payload_too_large",
        ),
    ];
    for (ct, body, status, code) in cases {
        expect_error(s.post_raw("/sms/send", Some(&alice), ct, body).await, status, code).await;
    }
    let missing = expect_error(s.post("/sms/send", Some(&alice), &json!({})).await, 400, "invalid_request").await;
    assert_eq!(missing["message"], "missing required fields: to, body");
    let too_long = "y".repeat(1601);
    let s2 = s.post("/sms/send", Some(&alice), &json!({"to": "+15005550006", "body": too_long})).await;
    // 1601 chars fit the 4 KiB body limit; the length rule rejects them.
    expect_error(s2, 400, "invalid_request").await;
    assert_eq!(s.scalar("SELECT COUNT(*) FROM messages").await, before, "nothing half-written");
    s.stop().await;
}

async fn receive_rejects_bad_parameters(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (alice, _) = s.grant(&wallet(1), 30).await;
    for bad in ["limit=0", "limit=-5", "limit=x", "wait=31", "wait=-1", "wait=1.5", "limit=%ZZ"] {
        expect_error(s.get(&format!("/sms/receive?{bad}"), Some(&alice)).await, 400, "invalid_request").await;
    }
    let ok = json(s.get("/sms/receive?limit=1000&wait=0", Some(&alice)).await).await;
    assert_eq!(ok, json!({"messages": [], "count": 0}));
    s.stop().await;
}

async fn another_wallets_data_is_invisible(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (alice, _) = s.grant(&wallet(1), 30).await;
    let (bob, bob_number) = s.grant(&wallet(2), 30).await;
    let (carol, _) = s.grant(&wallet(3), 30).await;
    json(s.post("/sms/send", Some(&alice), &json!({"to": bob_number, "body": "for bob only"})).await).await;
    json(s.post("/sms/send", Some(&alice), &json!({"to": "+15005550006", "body": "alice private"})).await).await;
    assert_eq!(json(s.get("/sms/receive?wait=0", Some(&carol)).await).await["count"], 0);
    let carol_history = json(s.get("/sms/messages", Some(&carol)).await).await;
    assert_eq!(carol_history["messages"].as_array().expect("a").len(), 0);
    assert_eq!(json(s.get("/sms/receive?wait=10", Some(&bob)).await).await["count"], 1);
    let bob_history = json(s.get("/sms/messages", Some(&bob)).await).await;
    let bodies: Vec<&str> =
        bob_history["messages"].as_array().expect("a").iter().map(|m| m["body"].as_str().expect("b")).collect();
    assert_eq!(bodies, vec!["for bob only"]);
    s.stop().await;
}

async fn restart_resumes_queued_and_never_resends_interrupted(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    let (alice, number) = s.grant(&wallet(1), 30).await;
    let owner = s.scalar("SELECT id FROM subscriptions").await;
    s.shutdown().await;
    // Left behind by a process that stopped: one message committed but never submitted, one
    // submitted-or-not (`sending` for minutes), one `sending` a moment ago (a live node's).
    let old = agentline::clock::now_ms() - 10 * 60_000;
    let recent = agentline::clock::now_ms();
    for (mid, status, at) in
        [("msg_queued", "queued", old), ("msg_interrupted", "sending", old), ("msg_live", "sending", recent)]
    {
        s.exec(&format!(
            "INSERT INTO messages (message_id, owner, number, direction, peer, body, status, created_at, updated_at) \
             VALUES ('{mid}', {owner}, '{number}', 'sent', '+15005550006', 'left behind', '{status}', {at}, {at})"
        ))
        .await;
    }
    s.resume().await;
    let delivered = wait_for_status(&s, &alice, "msg_queued", "delivered").await;
    assert_eq!(delivered["body"], "left behind");
    wait_for_status(&s, &alice, "msg_interrupted", "unknown").await;
    assert_eq!(s.scalar("SELECT attempts FROM messages WHERE message_id = 'msg_interrupted'").await, 0, "never resent");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM messages WHERE message_id = 'msg_live' AND status = 'sending'").await, 1);
    s.stop().await;
}

async fn readiness_fails_and_errors_stay_generic_when_the_database_is_gone(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (alice, _) = s.grant(&wallet(1), 30).await;
    assert_eq!(json(s.get("/health/ready", None).await).await["status"], "ready");
    // The schema disappears under the running server.
    for table in ["messages", "tokens", "numbers", "waitlist", "audit"] {
        s.exec(&format!("ALTER TABLE {table} RENAME TO gone_{table}")).await;
    }
    let resp = s.get("/health/ready", None).await;
    assert_eq!(resp.status(), 503);
    let ready: Value = resp.json().await.expect("json");
    assert_eq!(ready["status"], "unavailable");
    assert_eq!(ready["checks"]["database"]["status"], "fail");
    assert_eq!(ready["checks"]["sms_network"]["status"], "ok");
    let resp = s.get("/sms/availability", None).await;
    let body = expect_error(resp, 500, "internal_error").await;
    let message = body["message"].as_str().expect("message");
    assert!(!message.contains("numbers") && !message.contains("table"), "no cause leaks: {message}");
    expect_error(s.get("/sms/messages", Some(&alice)).await, 500, "internal_error").await;
    expect_error(s.post("/sms/waitlist", None, &json!({"email": "a@example.com"})).await, 500, "internal_error").await;
    assert_eq!(s.get("/health", None).await.status(), 200, "liveness does not depend on the database");
    s.stop().await;
}

both!(expiry_keeps_the_number_through_grace_then_quarantines_then_frees_it);

async fn expiry_keeps_the_number_through_grace_then_quarantines_then_frees_it(backend: Backend) {
    let mut s = TestServer::start_with(backend, |c| c.sim.seed_numbers = 2).await;
    let (token, number) = s.grant(&wallet(1), 30).await;
    let day = 86_400_000_i64;
    let now = agentline::clock::now_ms();
    // Expired 10 days ago: inside the 30-day grace, the number is kept (renewal keeps it).
    s.shutdown().await;
    s.exec(&format!("UPDATE subscriptions SET expires_at = {}", now - 10 * day)).await;
    s.resume().await; // the recycler runs at start
    assert_eq!(
        s.scalar(&format!("SELECT COUNT(*) FROM numbers WHERE e164 = '{number}' AND state = 'assigned'")).await,
        1
    );
    assert_eq!(json(s.get("/sms/number", Some(&token)).await).await["status"], "expired");
    // 31 days ago: past the grace, the number goes to quarantine and the token dies.
    s.shutdown().await;
    s.exec(&format!("UPDATE subscriptions SET expires_at = {}", now - 31 * day)).await;
    s.resume().await;
    assert_eq!(
        s.scalar(&format!("SELECT COUNT(*) FROM numbers WHERE e164 = '{number}' AND state = 'quarantined'")).await,
        1
    );
    expect_error(s.get("/sms/number", Some(&token)).await, 401, "unauthorized").await;
    assert_eq!(json(s.get("/sms/availability", None).await).await["available"], 1, "a quarantined number is not free");
    // After the 90-day quarantine it is free again, and the old owner's messages stay theirs.
    s.shutdown().await;
    s.exec(&format!("UPDATE numbers SET released_at = {} WHERE e164 = '{number}'", now - 91 * day)).await;
    s.resume().await;
    assert_eq!(json(s.get("/sms/availability", None).await).await["available"], 2);
    // The same wallet subscribing again gets a number again (renewed: false).
    let again =
        json(s.post("/admin/subscriptions", Some(ADMIN_KEY), &json!({"wallet": wallet(1), "days": 30})).await).await;
    assert_eq!(again["renewed"], false);
    s.stop().await;
}

/// PostgreSQL over TLS: the test command serves it with a throwaway CA (scripts/test) and the
/// whole suite connects with `sslmode=verify-full`. Here: the CA given as `tls.ca_file` is what a
/// URL without `sslrootcert` is verified against, and a wrong CA stops the start with a message
/// naming `database_url`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_is_verified_against_the_configured_ca() {
    let admin = std::env::var("TEST_PG_URL").unwrap_or_default();
    let url = reqwest::Url::parse(&admin).expect("TEST_PG_URL is a URL");
    let ca = url.query_pairs().find(|(k, _)| k == "sslrootcert").map(|(_, v)| v.into_owned()).expect(
        "TEST_PG_URL names the test CA (sslrootcert): run scripts/test, which turns TLS on for the local server",
    );
    let mut bare = url.clone();
    bare.query_pairs_mut().clear().append_pair("sslmode", "verify-full");

    // verify-full without sslrootcert: only tls.ca_file can make the server's certificate trusted.
    let mut config = agentline::Config { database_url: bare.to_string(), ..agentline::Config::default() };
    assert!(agentline::app::connect_store(&config, 1).await.is_err(), "the built-in roots do not know the test CA");
    config.tls.ca_file = Some(ca);
    // The pool connects at once: a store means a verified TLS session stood.
    let store = agentline::app::connect_store(&config, 1).await.expect("verified against tls.ca_file");
    store.close().await;

    // A CA that did not sign the server's certificate: the start fails and says where to look.
    let wrong = support::tls::TestCa::new("another CA");
    config.tls.ca_file = Some(wrong.cert.to_str().expect("utf-8").to_owned());
    let err = match agentline::App::build(config).await {
        Err(err) => err.to_string(),
        Ok(_) => panic!("a server certificate from another CA was accepted"),
    };
    assert!(err.starts_with("database_url: "), "{err}");
}

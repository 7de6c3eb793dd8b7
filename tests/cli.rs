//! The `agentline` binary as an operator runs it: migrate, numbers add|import|list, and serve
//! with its `listening on` line and a graceful SIGTERM that answers open long-polls.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_agentline");
const ADMIN_KEY: &str = "cli-test-admin-key-0123456789";

fn agentline(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).env("AGENTLINE_DATABASE_URL", db).env("AGENTLINE_LOG", "warn").output().expect("runs")
}

#[test]
fn migrate_and_manage_the_pool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/cli.db", dir.path().display());
    let out = agentline(&db, &["migrate"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "migrations applied");

    let out = agentline(&db, &["numbers", "add", "+15005550001", "+15005550002", "+15005550001"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "added 2, already present 0");

    let out = agentline(&db, &["numbers", "add", "+15005550003", "5005550004"]);
    assert!(!out.status.success(), "a bad number fails the whole command");
    assert!(String::from_utf8_lossy(&out.stderr).contains("5005550004"));

    let file = dir.path().join("dids.csv");
    std::fs::write(&file, "# our DIDs\n+15005550002,main\n\n+15005550005,backup\n").expect("write");
    let out = agentline(&db, &["numbers", "import", file.to_str().expect("utf8")]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "added 1, already present 1");

    let out = agentline(&db, &["numbers", "list"]);
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(listed, vec!["+15005550001\tfree\t-", "+15005550002\tfree\t-", "+15005550005\tfree\t-"]);

    let out = Command::new(BIN).args(["migrate"]).env("AGENTLINE_DATABASE_URL", "mysql://x").output().expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_url"), "{out:?}");
}

#[test]
fn serve_logs_its_address_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("agentline.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:9\"\nservice_name = \"from-file\"\n[sim]\nseed_numbers = 3\n")
        .expect("write config");
    let db = format!("sqlite://{}/serve.db", dir.path().display());
    let server = support::ServeProcess::spawn(
        &["--config", config.to_str().expect("utf8")],
        &[
            ("AGENTLINE_DATABASE_URL", &db),
            ("AGENTLINE_LISTEN", "127.0.0.1:0"), // the environment wins over the file
            ("AGENTLINE_ADMIN_KEY", ADMIN_KEY),
            ("AGENTLINE_LOG", "info"),
        ],
    );
    let base = server.base.clone();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let http = reqwest::Client::new();
        let health: Value =
            http.get(format!("{base}/health")).send().await.expect("health").json().await.expect("json");
        assert_eq!(health["status"], "ok");
        assert_eq!(
            http.get(format!("{base}/sms/availability")).send().await.expect("a").json::<Value>().await.expect("j"),
            json!({"available": 3})
        );
        let llms = http.get(format!("{base}/llms.txt")).send().await.expect("llms").text().await.expect("text");
        assert!(llms.contains("from-file"), "the file's service_name is used");
        let grant: Value = http
            .post(format!("{base}/admin/subscriptions"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"wallet": format!("0x{}", "ab".repeat(20)), "days": 1}))
            .send()
            .await
            .expect("grant")
            .json()
            .await
            .expect("json");
        let token = grant["token"].as_str().expect("token").to_owned();
        let poll = {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                http.get(format!("{base}/sms/receive?wait=30")).bearer_auth(token).send().await.expect("long-poll")
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = http.get(format!("{base}/metrics")).send().await.expect("m").text().await.expect("t");
            if metrics.contains("agentline_sms_longpoll_waiting 1") {
                break;
            }
            assert!(Instant::now() < deadline, "long-poll never parked");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let sent_term = Instant::now();
        server.terminate();
        let resp = poll.await.expect("poll task");
        assert_eq!(resp.status(), 200, "the open long-poll is answered, not cut");
        assert_eq!(resp.json::<Value>().await.expect("json")["count"], 0);
        assert!(sent_term.elapsed() < Duration::from_secs(25), "answered at shutdown, not at the end of its wait");
    });
    let (status, rest) = server.wait();
    assert!(status.success(), "exit status {status:?}");
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
}

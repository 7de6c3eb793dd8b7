//! Documents that cannot drift. The examples of README.md and docs/first-five-minutes.md that are
//! marked `<!-- test: NAME -->` are run as written against a real server (on SQLite and on
//! PostgreSQL): the shell blocks with bash and the real `curl` (wrapped only to report each HTTP
//! status on stderr), the Python block with the PyPI x402 client of tests/peers. A wrong field
//! name, path or status in a document fails here. Also: every route the router registers is in
//! the served `/openapi.json`, every path of the contract is served with its methods and status
//! codes, and the stream close codes the documents list are the ones `voice::ending` sends.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use agentline::voice::ending::{EndReason, StreamClose};
use serde_json::{Value, json};
use support::peers::{address_of, ensure_installed, peers_dir};
use support::{ADMIN_KEY, Backend, TestServer, wallet};

/// The payer of the Python example (anvil account 6; the sandbox verifies, moves nothing).
const PAYER_KEY: &str = "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The blocks of a Markdown document marked `<!-- test: NAME -->`: name -> (language, code).
fn marked_blocks(doc: &str) -> BTreeMap<String, (String, String)> {
    let mut blocks = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.trim().strip_prefix("<!-- test:").and_then(|r| r.strip_suffix("-->")) else {
            continue;
        };
        let fence = lines.next().expect("a fenced block follows the marker");
        let lang = fence.strip_prefix("```").unwrap_or_else(|| panic!("marker {name} not followed by a fence"));
        assert!(["sh", "bash", "python"].contains(&lang), "block {name}: language {lang}");
        let code: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let previous = blocks.insert(name.trim().to_owned(), (lang.to_owned(), code.join("\n") + "\n"));
        assert!(previous.is_none(), "two blocks named {name}");
    }
    blocks
}

/// What a block printed, and the HTTP status of each curl request it made, in order.
struct Ran {
    stdout: String,
    stderr: String,
    statuses: Vec<u16>,
}

impl Ran {
    /// The JSON values printed one after another (curl prints bodies without separators).
    fn json(&self) -> Vec<Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("not JSON values ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

fn real_curl() -> PathBuf {
    let path = std::env::var_os("PATH").expect("PATH");
    std::env::split_paths(&path).map(|d| d.join("curl")).find(|p| p.is_file()).expect("curl on PATH")
}

/// Runs `code` (bash with `-euo pipefail`, or python3) with `envs`; curl reports statuses on stderr.
async fn run(lang: &str, code: String, envs: Vec<(&'static str, String)>) -> Ran {
    let python = lang == "python";
    tokio::task::spawn_blocking(move || {
        ensure_installed();
        let shims = tempfile::tempdir().expect("tempdir");
        let shim = shims.path().join("curl");
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\nexec '{}' --write-out '%{{stderr}}HTTP_STATUS %{{http_code}}\\n' \"$@\"\n",
                real_curl().display()
            ),
        )
        .expect("write curl shim");
        std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let path = format!("{}:{}", shims.path().display(), std::env::var("PATH").expect("PATH"));
        let mut cmd = if python {
            let mut c = Command::new("python3");
            c.arg("-c").arg(&code);
            c
        } else {
            let mut c = Command::new("bash");
            c.args(["-euo", "pipefail", "-c"]).arg(&code);
            c
        };
        cmd.env("PATH", path).env("PYTHONPATH", peers_dir().join(".pydeps")).current_dir(shims.path());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("block runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "block failed ({:?}):\n{code}\nstdout: {stdout}\nstderr: {stderr}", out.status);
        let statuses =
            stderr.lines().filter_map(|l| l.strip_prefix("HTTP_STATUS ")).map(|s| s.parse().expect("status")).collect();
        Ran { stdout, stderr, statuses }
    })
    .await
    .expect("block task")
}

both!(documented_examples_run_as_written);

async fn documented_examples_run_as_written(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.sim.answer_delay_ms = 20).await;
    let host = s.base.strip_prefix("http://").expect("http base").to_owned();
    let guide = marked_blocks(&read("docs/first-five-minutes.md"));
    let readme = marked_blocks(&read("README.md"));
    assert_eq!(
        guide.keys().map(String::as_str).collect::<Vec<_>>(),
        ["call", "challenge", "python-subscribe", "recover", "sms"],
        "the runnable blocks of docs/first-five-minutes.md"
    );
    assert_eq!(readme.keys().map(String::as_str).collect::<Vec<_>>(), ["readme-grant"]);
    let block = |name: &str| {
        let (lang, code) = guide[name].clone();
        (lang, code.replace("{base_url}", &s.base))
    };

    // The PyPI x402 client pays (sandbox: fully verified, nothing moves).
    let (lang, code) = block("python-subscribe");
    assert_eq!(lang, "python");
    let ran = run(&lang, code, vec![("KEY", PAYER_KEY.to_owned())]).await;
    let paid = ran.json().pop().expect("the subscribe answer");
    let token = paid["token"].as_str().unwrap_or_else(|| panic!("no token: {paid}")).to_owned();
    let number = paid["number"].as_str().expect("number").to_owned();
    assert!(token.starts_with("an_") && number.starts_with('+'), "{paid}");
    assert_eq!(paid["renewed"], false, "{paid}");
    assert_eq!(s.scalar("SELECT COUNT(*) FROM payments").await, 1);

    // The free shapes and the 402 challenge.
    let (lang, code) = block("challenge");
    let ran = run(&lang, code, vec![]).await;
    assert_eq!(ran.statuses, [200, 402], "{}", ran.stderr);
    let lower = ran.stdout.to_ascii_lowercase();
    assert!(lower.contains("\npayment-required: "), "{}", ran.stdout);
    assert!(ran.stdout.contains("\"x402Version\"") && ran.stdout.contains("\"accepts\""), "{}", ran.stdout);

    // Codes, other messages, sending: another agent texts this number first.
    let (sender_token, sender_number) = s.grant(&wallet(9), 30).await;
    for body in ["Your code is 482913", "hello from another agent"] {
        let resp = s.post("/sms/send", Some(&sender_token), &json!({"to": number, "body": body})).await;
        assert_eq!(resp.status(), 200);
    }
    let (lang, code) = block("sms");
    let ran = run(&lang, code, vec![("TOKEN", token.clone())]).await;
    assert_eq!(ran.statuses, [200, 200, 200], "{}", ran.stderr);
    let [code_answer, received, sent] = <[Value; 3]>::try_from(ran.json()).expect("three answers");
    assert_eq!(code_answer["code"], "482913", "{code_answer}");
    assert_eq!(code_answer["sender"], sender_number.as_str());
    assert_eq!(received["count"], 1, "{received}");
    assert_eq!(received["messages"][0]["body"], "hello from another agent");
    assert_eq!(sent["status"], "queued", "{sent}");
    assert!(sent["message_id"].as_str().is_some_and(|id| id.starts_with("msg_")), "{sent}");

    // A call dialled and hung up.
    let (lang, code) = block("call");
    let ran = run(&lang, code, vec![("TOKEN", token.clone()), ("NUMBER", number.clone())]).await;
    assert_eq!(ran.statuses, [200, 200], "{}", ran.stderr);
    let [dialled, hung_up] = <[Value; 2]>::try_from(ran.json()).expect("two answers");
    assert!(dialled["call_id"].as_str().is_some_and(|id| id.starts_with("call_")), "{dialled}");
    assert!(dialled["stream_url"].as_str().is_some_and(|u| u.starts_with("ws://")), "{dialled}");
    assert!(["ringing", "in_progress"].contains(&dialled["state"].as_str().expect("state")), "{dialled}");
    assert_eq!(hung_up["status"], "hangup_sent", "{hung_up}");

    // The lost token recovered with a wallet signature: a new token, the old one dead.
    let (lang, code) = block("recover");
    let envs = vec![("WALLET", address_of(PAYER_KEY)), ("KEY", PAYER_KEY.to_owned())];
    let ran = run(&lang, code, envs).await;
    assert_eq!(ran.statuses, [200, 200], "{}", ran.stderr);
    let recovered = ran.json().pop().expect("the auth answer");
    let fresh = recovered["token"].as_str().unwrap_or_else(|| panic!("no token: {recovered}"));
    assert_ne!(fresh, token);
    assert_eq!(recovered["number"], number.as_str());
    let mine: Value = s.get("/sms/number", Some(fresh)).await.json().await.expect("json");
    assert_eq!(mine["number"], number.as_str(), "{mine}");
    assert_eq!(s.get("/sms/number", Some(&token)).await.status(), 401);

    // The README's comp grant, with localhost:8402 being this server.
    let (lang, code) = readme["readme-grant"].clone();
    let ran =
        run(&lang, code.replace("localhost:8402", &host), vec![("AGENTLINE_ADMIN_KEY", ADMIN_KEY.to_owned())]).await;
    assert_eq!(ran.statuses, [200, 200, 200], "{}", ran.stderr);
    let [line, sent] = <[Value; 2]>::try_from(ran.json()).expect("two answers");
    assert_eq!(line["status"], "active", "{line}");
    assert!(line["number"].as_str().is_some_and(|n| n.starts_with('+')), "{line}");
    assert_eq!(sent["status"], "queued", "{sent}");

    // The served long guide carries the page as tested, with this server's address.
    let full = s.get("/llms-full.txt", None).await.text().await.expect("text");
    assert!(!full.contains("{base_url}"));
    assert!(full.contains(&guide["recover"].1.replace("{base_url}", &s.base)), "recover block not served");
    s.stop().await;
}

/// Every `.route("…")` / `.nest_service("…")` path string under `src/api`.
fn router_paths(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("src/api") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            router_paths(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source");
            for call in [".route(\"", ".nest_service(\""] {
                for (at, _) in text.match_indices(call) {
                    let rest = &text[at + call.len()..];
                    out.insert(rest[..rest.find('"').expect("closing quote")].to_owned());
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_every_contract_path_is_in_the_served_openapi() {
    let s = TestServer::start(Backend::Sqlite).await;
    let served: Value = s.get("/openapi.json", None).await.json().await.expect("openapi json");
    let paths = served["paths"].as_object().expect("paths");

    let mut routes = BTreeSet::new();
    router_paths(&repo("src/api"), &mut routes);
    assert!(routes.len() > 20 && routes.contains("/mcp") && routes.contains("/sms/code"), "{routes:?}");
    let missing: Vec<_> = routes.iter().filter(|r| !paths.contains_key(r.as_str())).collect();
    assert!(missing.is_empty(), "routes missing from the served openapi.json: {missing:?}");

    let contract: Value = serde_json::from_str(&read("fixtures/contract-openapi.json")).expect("contract json");
    for (path, ops) in contract["paths"].as_object().expect("contract paths") {
        let ours = paths.get(path).unwrap_or_else(|| panic!("contract path {path} not served"));
        for (method, op) in ops.as_object().expect("operations") {
            let Some(codes) = op.get("responses").and_then(Value::as_object) else { continue };
            let our_op = ours.get(method).unwrap_or_else(|| panic!("{method} {path} of the contract not served"));
            for code in codes.keys() {
                assert!(our_op["responses"].get(code).is_some(), "{method} {path}: contract status {code} missing");
            }
        }
    }
    s.stop().await;
}

/// The close-code tables of the documents are the codes the stream socket sends.
#[test]
fn documented_close_codes_are_the_ones_sent() {
    let protocol = read("docs/voice-protocol.md");
    let llms = read("src/api/llms.txt");
    let openapi = read("src/api/openapi.json");
    let mut closes: Vec<StreamClose> = EndReason::ALL.into_iter().map(StreamClose::Ended).collect();
    closes.push(StreamClose::AlreadyStreaming);
    for close in closes {
        let (code, reason) = (close.code(), close.reason());
        assert!(protocol.contains(&format!("| {code} | `{reason}` |")), "voice-protocol.md: {code} {reason}");
        assert!(llms.contains(&format!("{code} {reason}")), "llms.txt: {code} {reason}");
        assert!(openapi.contains(&format!("{code} `{reason}`")), "openapi.json: {code} {reason}");
    }
    for stale in ["close code 1000", "code 1000", "code **1000**", "no SIP trunk in this build"] {
        assert!(!protocol.contains(stale) && !llms.contains(stale) && !openapi.contains(stale), "stale: {stale}");
    }
}

//! The independent peers in `tests/peers`: anvil, viem signing, the official x402 clients.
//! Installed by `tests/peers/setup.sh` (run by `scripts/test`; run here too if missing).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

static INSTALL: Once = Once::new();

pub fn ensure_installed() {
    INSTALL.call_once(|| {
        let out = Command::new("bash").arg(peers_dir().join("setup.sh")).output().expect("run tests/peers/setup.sh");
        assert!(out.status.success(), "tests/peers/setup.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    });
}

fn run(mut cmd: Command) -> Value {
    ensure_installed();
    let out = cmd.current_dir(peers_dir()).output().expect("peer runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "peer printed no JSON (status {:?}): {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `node tests/peers/SCRIPT ARGS…`, its one JSON line.
pub async fn node(script: &str, args: &[String]) -> Value {
    let (script, args) = (script.to_owned(), args.to_vec());
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("node");
        cmd.arg(script).args(args);
        run(cmd)
    })
    .await
    .expect("node peer task")
}

/// `python3 tests/peers/pay.py ARGS…`, its one JSON line.
pub async fn python_pay(args: &[String]) -> Value {
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("python3");
        cmd.arg("pay.py").args(args);
        run(cmd)
    })
    .await
    .expect("python peer task")
}

pub fn arg(v: impl ToString) -> String {
    v.to_string()
}

/// A local chain, killed on drop.
pub struct Anvil {
    child: Child,
    pub rpc: String,
    pub chain_id: u64,
}

/// anvil's default accounts 0 (deployer, minter) and 1 (our relayer).
pub const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
pub const RELAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

impl Anvil {
    pub fn start(chain_id: u64) -> Self {
        ensure_installed();
        let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let bin = peers_dir().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--chain-id", &chain_id.to_string(), "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("anvil starts");
        let rpc = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if up {
                break;
            }
            assert!(Instant::now() < deadline, "anvil did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, rpc, chain_id }
    }

    pub async fn deploy(&self, name: &str, version: &str) -> String {
        let out = node(
            "chain.mjs",
            &[arg("deploy"), arg("--rpc"), self.rpc.clone(), arg("--name"), arg(name), arg("--version"), arg(version)],
        )
        .await;
        out["token"].as_str().expect("token address").to_owned()
    }

    pub async fn mint(&self, token: &str, to: &str, amount: u128) {
        node(
            "chain.mjs",
            &[
                arg("mint"),
                arg("--rpc"),
                self.rpc.clone(),
                arg("--token"),
                arg(token),
                arg("--to"),
                arg(to),
                arg("--amount"),
                arg(amount),
            ],
        )
        .await;
    }

    pub async fn balance(&self, token: &str, of: &str) -> u128 {
        let out = node(
            "chain.mjs",
            &[arg("balance"), arg("--rpc"), self.rpc.clone(), arg("--token"), arg(token), arg("--of"), arg(of)],
        )
        .await;
        out["balance"].as_str().expect("balance").parse().expect("number")
    }

    pub async fn auth_used(&self, token: &str, from: &str, nonce: &str) -> bool {
        let out = node(
            "chain.mjs",
            &[
                arg("auth-state"),
                arg("--rpc"),
                self.rpc.clone(),
                arg("--token"),
                arg(token),
                arg("--from"),
                arg(from),
                arg("--nonce"),
                arg(nonce),
            ],
        )
        .await;
        out["used"].as_bool().expect("used")
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address of a private key (hex), computed independently of the server.
pub fn address_of(key: &str) -> String {
    let bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&key[2 + 2 * i..4 + 2 * i], 16).expect("hex")).collect();
    let signing = k256::ecdsa::SigningKey::from_slice(&bytes).expect("key");
    alloy_primitives::Address::from_private_key(&signing).to_checksum(None)
}

/// anvil's default account 2: the facilitator's own signer.
pub const FACILITATOR_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

/// The official x402 facilitator (`tests/peers/facilitator.mjs`) on loopback, killed on drop.
pub struct FacilitatorPeer {
    child: Child,
    pub url: String,
}

impl FacilitatorPeer {
    pub fn start(rpc: &str) -> Self {
        use std::io::{BufRead, BufReader};
        ensure_installed();
        let mut child = Command::new("node")
            .args(["facilitator.mjs", "--rpc", rpc, "--key", FACILITATOR_KEY, "--port", "0"])
            .current_dir(peers_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("facilitator starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("facilitator prints its url");
        let parsed: Value = serde_json::from_str(line.trim()).expect("json line");
        Self { child, url: parsed["url"].as_str().expect("url").to_owned() }
    }
}

impl Drop for FacilitatorPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SMSC simulator (`tests/peers/smsc.mjs`, node-smpp): an independent carrier SMSC on
/// 127.0.0.1 with a JSON control API. Killed on drop.
pub struct Smsc {
    child: Child,
    pub smpp_port: u16,
    pub control: String,
    http: reqwest::Client,
}

impl Smsc {
    /// Starts the simulator; `args` are its switches as flags (e.g. `--dlr-first`).
    pub fn start(args: &[&str]) -> Self {
        use std::io::{BufRead, BufReader};
        ensure_installed();
        let mut child = Command::new("node")
            .args(["smsc.mjs", "--port", "0", "--control-port", "0", "--exit-on-stdin-close"])
            .args(args)
            .current_dir(peers_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("SMSC simulator starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the simulator prints its ports");
        let ports: Value = serde_json::from_str(line.trim()).expect("json line");
        let smpp_port = ports["smpp"].as_u64().expect("smpp port") as u16;
        let control = format!("http://127.0.0.1:{}", ports["control"].as_u64().expect("control port"));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("client");
        Self { child, smpp_port, control, http }
    }

    /// `smpp://agent:secret@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smpp://agent:secret@127.0.0.1:{}", self.smpp_port)
    }

    pub async fn state(&self) -> Value {
        self.http.get(format!("{}/state", self.control)).send().await.expect("GET /state").json().await.expect("json")
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let resp = self.http.post(format!("{}{path}", self.control)).json(body).send().await.expect("POST");
        assert!(resp.status().is_success(), "SMSC control {path}: {}", resp.status());
        resp.json().await.expect("json")
    }

    pub async fn config(&self, switches: Value) -> Value {
        self.post("/config", &switches).await
    }

    /// Injects one MO (`{from, to, text, parts?, udh16?, sar?, order?, data_coding?}`); its id.
    pub async fn mo(&self, spec: Value) -> u64 {
        self.post("/mo", &spec).await["id"].as_u64().expect("mo id")
    }

    pub async fn mo_burst(&self, spec: Value) -> Value {
        self.post("/mo-burst", &spec).await
    }

    pub async fn drop_connections(&self) -> u64 {
        self.post("/drop", &serde_json::json!({})).await["dropped"].as_u64().expect("dropped")
    }

    /// Waits until counter `key` (or `bound`) reaches `n`; panics after 60 s.
    pub async fn wait(&self, key: &str, n: u64) {
        let resp =
            self.http.get(format!("{}/wait?{key}={n}&timeout_ms=60000", self.control)).send().await.expect("GET /wait");
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert!(status.is_success(), "SMSC never reached {key} >= {n}: {body}");
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Starts the real server on 127.0.0.1:0 over a fresh database (a SQLite file, or a new
//! Postgres database on `TEST_PG_URL`) and talks to it with a real HTTP client.

#![allow(dead_code)]

pub mod goertzel;
pub mod peers;
pub mod sip;
pub mod tls;
pub mod ws;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use agentline::{App, Config};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::AnyPool;
use tokio::sync::oneshot;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `name::sqlite` and `name::postgres` tests running `async fn name(Backend)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    )*};
}

pub struct TestServer {
    pub base: String,
    pub http: Client,
    pub db_url: String,
    db: AnyPool,
    pg_cleanup: Option<(String, String)>,
    _dir: tempfile::TempDir,
    config: Config,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server; `tweak` adjusts the configuration first.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("tempdir");
        let (db_url, pg_cleanup) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/agentline.db", dir.path().display()), None),
            Backend::Postgres => {
                let admin = pg_admin_url();
                // PIDs repeat across test processes: a random part keeps names unique.
                let name = format!(
                    "t_{}_{}_{:08x}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    rand::random::<u32>()
                );
                let pool = AnyPool::connect(&admin).await.expect("TEST_PG_URL reachable (Postgres on 127.0.0.1:5432)");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&pool)
                    .await
                    .expect("create test database");
                pool.close().await;
                // The same server and parameters (sslmode, sslrootcert), another database.
                let mut url = reqwest::Url::parse(&admin).expect("TEST_PG_URL is a URL");
                url.set_path(&format!("/{name}"));
                (url.to_string(), Some((admin, name)))
            }
        };
        let env: HashMap<String, String> = HashMap::new();
        let mut config = Config::load(None, &env).expect("default config");
        config.database_url = db_url.clone();
        config.admin_key = Some(agentline::config::Secret::new(ADMIN_KEY));
        config.sim.seed_numbers = 20;
        config.sim.delivery_delay_ms = 20;
        config.listen = "127.0.0.1:0".parse().expect("addr");
        tweak(&mut config);
        let (base, stop, served) = serve(config.clone()).await;
        let db = AnyPool::connect(&db_url).await.expect("test db connection");
        Self {
            base,
            http: Client::builder().timeout(Duration::from_secs(60)).build().expect("client"),
            db_url,
            db,
            pg_cleanup,
            _dir: dir,
            config,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Starts another server process-equivalent on the same database (a second node).
    pub async fn second_node(&self) -> SecondNode {
        let (base, stop, served) = serve(self.config.clone()).await;
        SecondNode { base, stop: Some(stop), served: Some(served) }
    }

    /// Starts a server again on the database of a stopped one.
    pub async fn resume(&mut self) {
        let (base, stop, served) = serve(self.config.clone()).await;
        self.base = base;
        self.stop = Some(stop);
        self.served = Some(served);
    }

    /// Stops the server gracefully, keeping the database (see `resume`).
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(30), served).await.expect("graceful stop").expect("serve task");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("POST")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let mut req = self.http.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("POST")
    }

    /// Comp-grants `days` to `wallet` through the admin API: `(token, number)`.
    pub async fn grant(&self, wallet: &str, days: u32) -> (String, String) {
        let resp = self.post("/admin/subscriptions", Some(ADMIN_KEY), &json!({"wallet": wallet, "days": days})).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("json");
        (body["token"].as_str().expect("token").to_owned(), body["number"].as_str().expect("number").to_owned())
    }

    /// Runs SQL against the server's database (for asserting on rows).
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db)
            .await
            .expect("scalar query")
    }

    pub async fn text(&self, sql: &str) -> String {
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db)
            .await
            .expect("text query")
    }

    pub async fn exec(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&self.db).await.expect("exec");
    }

    /// Stops the server gracefully and drops a Postgres test database.
    pub async fn stop(mut self) {
        self.shutdown().await;
        self.db.close().await;
        if let Some((admin, name)) = self.pg_cleanup.take()
            && let Ok(pool) = AnyPool::connect(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&pool)
                .await;
            pool.close().await;
        }
    }
}

pub struct SecondNode {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl SecondNode {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), served).await;
        }
    }
}

/// Builds the app from `config` on a fresh 127.0.0.1 port and serves it until stopped.
async fn serve(mut config: Config) -> (String, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    config.public_url = Some(format!("http://{addr}"));
    let app = App::build(config).await.expect("app builds");
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        app.serve(listener, async move {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    (format!("http://{addr}"), stop, served)
}

/// Asserts status and envelope code; answers the body.
pub async fn expect_error(resp: Response, status: u16, code: &str) -> Value {
    let got = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "status; body {body}");
    assert_eq!(body["error"], code, "code; body {body}");
    assert!(body["message"].is_string(), "message present; body {body}");
    body
}

pub fn wallet(n: u8) -> String {
    format!("0x{}", format!("{n:02x}").repeat(20))
}

/// The real `agentline` binary serving in its own process, with its stderr read until the
/// `listening on http://ADDR` line (then drained in the background so it never blocks).
pub struct ServeProcess {
    child: std::process::Child,
    pub base: String,
    log: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl ServeProcess {
    pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agentline"));
        cmd.arg("serve").args(args).stderr(std::process::Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("agentline serve starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let base = loop {
            let line = lines.next().expect("serve printed its address").expect("utf8 line");
            if let Some(at) = line.find("listening on http://") {
                break line[at + "listening on ".len()..].trim().to_owned();
            }
        };
        let log = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        Self { child, base, log: Some(log) }
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM");
    }

    /// Sends SIGKILL: no shutdown, no flush, nothing answered.
    pub fn kill(&self) {
        let status = std::process::Command::new("kill").args(["-KILL", &self.child.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -KILL");
    }

    /// Waits for the process to exit: its status and the rest of its log.
    pub fn wait(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = self.child.wait().expect("exit status");
        let log = self.log.take().map(|h| h.join().expect("log reader")).unwrap_or_default();
        (status, log)
    }
}

impl Drop for ServeProcess {
    /// A test that fails midway must not leave a server running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

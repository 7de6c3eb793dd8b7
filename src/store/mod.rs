//! Every SQL statement of agentline (sqlx through `Any`), on SQLite (embedded default, WAL)
//! or PostgreSQL (scale). One SQL text serves both backends except where a constant says
//! otherwise (the claim query and the write-transaction BEGIN); the dual-backend test suite
//! is what keeps the SQL portable. Times are unix milliseconds, ids `i64`.
//!
//! Writes on the hot path (message inserts and status changes) go through the group-commit
//! [`MessageWriter`], which acknowledges each job after its transaction commits.

mod audit;
mod calls;
mod ids;
mod messages;
mod payments;
mod subscriptions;
mod waitlist;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

pub use audit::AuditEntry;
pub use calls::{CallDirection, CallRow, CallState, EndReason, UnknownValue};
pub use messages::{
    ClaimedMessage, Direction, HistoryCursor, HistoryFilter, HistoryRow, OutboundStatus, PendingOutbound,
};
pub use payments::{
    EarlierPayment, NewPayment, PaymentState, Purchase, Reservation, UnsettledPayment, WalletSubscription,
};
pub use subscriptions::{AuthRow, Grant, GrantRequest, NumberRow, NumberState, PoolCounts, SubscriptionSource};
pub use writer::{
    CallWrite, InboundInsert, InboundOutcome, InboundPart, MessageWriter, OutboundInsert, StatusChange, StatusKey,
    StatusTarget, WriterStopped,
};

static MIGRATE_SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static MIGRATE_POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// SQLite pragmas set on every pooled connection. `synchronous = FULL`: a commit is on disk
/// before it is acknowledged; group commit makes that affordable.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA temp_store = MEMORY",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The statement that begins a write transaction, when it is not the plain `BEGIN`:
    /// `BEGIN IMMEDIATE` on SQLite takes the write lock up front, so a read-then-write never
    /// fails with SQLITE_BUSY_SNAPSHOT.
    fn begin_write_sql(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => Some("BEGIN IMMEDIATE"),
            Self::Postgres => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url (want sqlite: or postgres:)")]
    UnsupportedUrl,
    #[error("cannot create database directory {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    WriterStopped(#[from] WriterStopped),
    /// A rule the schema and the code keep together did not hold (a bug or a hand edit).
    #[error("store invariant broken: {0}")]
    Invariant(String),
}

/// Handle to the database: a read pool and a write pool (the same pool on Postgres; one
/// dedicated connection on SQLite, where writers serialize anyway).
#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects (creating a SQLite file and its directory if needed). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        match backend {
            Backend::Sqlite => {
                let url = sqlite_url_with_create(url)?;
                let read = sqlite_pool(&url, max_connections).await?;
                let write = sqlite_pool(&url, 1).await?;
                Ok(Self { read, write, backend })
            }
            Backend::Postgres => {
                let opts = AnyConnectOptions::from_str(url)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections.max(2))
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?;
                Ok(Self { read: pool.clone(), write: pool, backend })
            }
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => MIGRATE_SQLITE.run(&self.write).await?,
            Backend::Postgres => MIGRATE_POSTGRES.run(&self.write).await?,
        }
        Ok(())
    }

    /// A cheap round trip that also proves the schema is there, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM numbers WHERE e164 = ''").fetch_one(&self.read).await?;
        Ok(())
    }

    /// Begins a write transaction (see [`Backend::begin_write_sql`]).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend.begin_write_sql() {
            Some(sql) => self.write.begin_with(sql).await,
            None => self.write.begin().await,
        }
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// A pool on the SQLite file. Connections are not pinged before each acquire (sqlx's default):
/// an embedded connection has no peer to lose, and the ping is a round trip to the
/// connection's worker thread on every write, measured as part of the MO path's latency tail.
async fn sqlite_pool(url: &str, max: u32) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                for pragma in SQLITE_PRAGMAS {
                    conn.execute(*pragma).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// Adds `mode=rwc` and creates the parent directory of a file database.
fn sqlite_url_with_create(url: &str) -> Result<String, StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    let dir = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir
        && path != ":memory:"
    {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::CreateDir { path: dir.display().to_string(), source })?;
    }
    if url.contains("mode=") {
        Ok(url.to_owned())
    } else if url.contains('?') {
        Ok(format!("{url}&mode=rwc"))
    } else {
        Ok(format!("{url}?mode=rwc"))
    }
}

/// For unit tests: a migrated SQLite store in `dir` holding `numbers`, one of them granted to a
/// comp subscription (returned).
#[cfg(test)]
pub(crate) async fn sqlite_with_a_holder(dir: &std::path::Path, numbers: &[&str]) -> (Store, Grant) {
    let store = Store::connect(&format!("sqlite://{}/t.db", dir.display()), 2).await.expect("store");
    store.migrate().await.expect("migrate");
    let numbers: Vec<String> = numbers.iter().map(|n| (*n).to_owned()).collect();
    store.add_numbers(&numbers, 1, None).await.expect("numbers");
    let grant = store
        .grant(
            &GrantRequest {
                wallet: "0x00000000000000000000000000000000000000aa",
                payer: "0x00000000000000000000000000000000000000aa",
                plan: "annual",
                duration_ms: 86_400_000,
                source: SubscriptionSource::Comp,
                token_hash: &[7; 32],
                now_ms: 1,
            },
            None,
        )
        .await
        .expect("grant")
        .expect("a number was free");
    (store, grant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_folders_are_in_lockstep() {
        let names = |dir: &str| {
            let mut v: Vec<String> = std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .expect("migrations dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("sqlite"), names("postgres"));
    }

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/sub/a.db", dir.path().display());
        let with = sqlite_url_with_create(&url).expect("ok");
        assert!(with.ends_with("a.db?mode=rwc"));
        assert!(dir.path().join("sub").is_dir());
        assert_eq!(sqlite_url_with_create("sqlite://x.db?mode=ro").expect("ok"), "sqlite://x.db?mode=ro");
    }
}

//! The audit trail: one row per operator (admin API or CLI) action, written in the same
//! transaction as the action itself, so an action and its record stand or fall together.

use super::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at_ms: i64,
    /// Who acted: `admin-api`, `cli`.
    pub actor: String,
    /// What: `numbers.add`, `subscriptions.grant`.
    pub action: String,
    /// A JSON object describing the action; never a secret.
    pub detail: String,
}

impl AuditEntry {
    pub(super) async fn insert(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO audit (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
            .bind(self.at_ms)
            .bind(&self.actor)
            .bind(&self.action)
            .bind(&self.detail)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

impl Store {
    /// The newest audit rows, newest first: `(at, actor, action, detail)`.
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<(i64, String, String, String)>, StoreError> {
        Ok(sqlx::query_as::<_, (i64, String, String, String)>(
            "SELECT at, actor, action, detail FROM audit ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }
}

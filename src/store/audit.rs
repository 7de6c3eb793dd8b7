//! The audit trail: one row per operator (admin API or CLI) action, written in the same
//! transaction as the action itself, so an action and its record stand or fall together.

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

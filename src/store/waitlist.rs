//! The waitlist: emails to notify when numbers free up. Joining twice keeps the first
//! registration time.

use super::{Store, StoreError};

impl Store {
    /// Registers `email` (already normalised) and answers its original registration time.
    pub async fn join_waitlist(&self, email: &str, now_ms: i64) -> Result<i64, StoreError> {
        sqlx::query("INSERT INTO waitlist (email, registered_at) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING")
            .bind(email)
            .bind(now_ms)
            .execute(&self.write)
            .await?;
        Ok(sqlx::query_scalar::<_, i64>("SELECT registered_at FROM waitlist WHERE email = $1")
            .bind(email)
            .fetch_one(&self.write)
            .await?)
    }
}

//! The leader's lease among replicas sharing one PostgreSQL database: a session advisory lock held
//! on a connection of its own, outside the pool, so that it lasts exactly as long as that
//! connection (a killed process or a cut network ends it, and a follower takes over). Each new
//! leader bumps the fencing epoch (`leadership.epoch`), which the leader's writes check, so a stale
//! leader that comes back cannot write.

use super::Lock;
use aof_actors::model::now_ms;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::time::Duration;

/// A replica's lease while it leads.
#[derive(Debug)]
pub struct Lease {
    conn: PgConnection,
    epoch: i64,
}

impl Lease {
    /// Tries once to lead: the lease with the new epoch when no one else holds it, `None` when
    /// another replica leads. `holder` names this replica in `leadership` (host and process).
    pub async fn try_acquire(
        options: &PgConnectOptions,
        holder: &str,
    ) -> Result<Option<Lease>, sqlx::Error> {
        let mut conn = options.connect().await?;
        if !Lock::Leader.try_hold(&mut conn).await? {
            let _ = conn.close().await;
            return Ok(None);
        }
        let epoch: i64 = sqlx::query_scalar(
            "INSERT INTO leadership (id, epoch, holder, since_ms) VALUES (1, 1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET
                 epoch = leadership.epoch + 1, holder = excluded.holder,
                 since_ms = excluded.since_ms
             RETURNING epoch",
        )
        .bind(holder)
        .bind(now_ms())
        .fetch_one(&mut conn)
        .await?;
        tracing::info!(epoch, holder, "this replica leads");
        Ok(Some(Lease { conn, epoch }))
    }

    /// Waits until this replica leads, trying every `every`; connection failures are retried too
    /// (the database may be the thing that is coming back).
    pub async fn acquire(options: &PgConnectOptions, holder: &str, every: Duration) -> Lease {
        loop {
            match Lease::try_acquire(options, holder).await {
                Ok(Some(lease)) => return lease,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not ask for the lease; trying again"),
            }
            tokio::time::sleep(every).await;
        }
    }

    /// The fencing epoch this lease was taken with.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Whether the lease still holds: its connection answers and the epoch is still ours. A
    /// `false` means another replica may lead now: stop sending at once.
    pub async fn alive(&mut self) -> bool {
        let epoch: Result<i64, _> = sqlx::query_scalar("SELECT epoch FROM leadership WHERE id = 1")
            .fetch_one(&mut self.conn)
            .await;
        matches!(epoch, Ok(e) if e == self.epoch)
    }

    /// Gives the lease up (a clean stop), so a follower need not wait for the connection to die.
    pub async fn release(mut self) {
        let _ = Lock::Leader.let_go(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;

//! The leader's lease among replicas sharing one PostgreSQL database: a session advisory lock held
//! on a connection of its own, outside the pool, so that it lasts exactly as long as that
//! connection (a killed process or a cut network ends it, and a follower takes over). Each new
//! leader bumps the fencing epoch (`leadership.epoch`) under the exclusive side of the fence lock,
//! so the old leader's writes under way are committed before it, and refused after ([`super::fence`]).

use super::Lock;
use aof_actors::model::now_ms;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::time::Duration;

/// Who leads, as the `leadership` row says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Leader {
    /// The fencing epoch: how many times leadership was taken on this database.
    pub epoch: i64,
    /// The replica (`host:pid`).
    pub holder: String,
    /// When it took over (epoch ms).
    pub since_ms: i64,
}

/// A replica's lease while it leads.
#[derive(Debug)]
pub struct Lease {
    conn: PgConnection,
    epoch: i64,
}

/// The lease connection's options: the server notices within about 4 s that a leader's host went
/// silent (a cut network, not only a closed socket) and ends its session, freeing the lease.
fn watched(options: &PgConnectOptions) -> PgConnectOptions {
    options.clone().application_name("aof-lease").options([
        ("tcp_keepalives_idle", "2"),
        ("tcp_keepalives_interval", "1"),
        ("tcp_keepalives_count", "2"),
    ])
}

/// A replica waiting to lead, with a connection of its own to ask on.
#[derive(Debug)]
pub struct Candidate {
    options: PgConnectOptions,
    holder: String,
    conn: Option<PgConnection>,
}

impl Candidate {
    /// A candidate named `holder` (host and process) on the database `options` names.
    pub fn new(options: &PgConnectOptions, holder: &str) -> Candidate {
        Candidate {
            options: watched(options),
            holder: holder.to_owned(),
            conn: None,
        }
    }

    /// Tries once to lead: the lease with the new epoch when no one else holds it, or who leads
    /// now (`None` before anyone ever led).
    pub async fn try_lead(
        mut self,
    ) -> Result<Result<Lease, (Candidate, Option<Leader>)>, sqlx::Error> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.options.connect().await?,
        };
        if !Lock::Leader.try_hold(&mut conn).await? {
            let leader = leader(&mut conn).await?;
            self.conn = Some(conn);
            return Ok(Err((self, leader)));
        }
        let epoch = match bump(&mut conn, &self.holder).await {
            Ok(epoch) => epoch,
            Err(e) => {
                let _ = Lock::Leader.let_go(&mut conn).await;
                return Err(e);
            }
        };
        tracing::info!(epoch, holder = %self.holder, "this replica leads");
        Ok(Ok(Lease { conn, epoch }))
    }
}

/// The `leadership` row.
async fn leader(conn: &mut PgConnection) -> Result<Option<Leader>, sqlx::Error> {
    let row: Option<(i64, String, i64)> =
        sqlx::query_as("SELECT epoch, holder, since_ms FROM leadership WHERE id = 1")
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(epoch, holder, since_ms)| Leader {
        epoch,
        holder,
        since_ms,
    }))
}

/// Takes the next epoch, once the old leader's fenced writes under way have ended.
async fn bump(conn: &mut PgConnection, holder: &str) -> Result<i64, sqlx::Error> {
    let mut tx = conn.begin().await?;
    Lock::Fence.take(&mut tx).await?;
    let epoch = sqlx::query_scalar(
        "INSERT INTO leadership (id, epoch, holder, since_ms) VALUES (1, 1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET
             epoch = leadership.epoch + 1, holder = excluded.holder,
             since_ms = excluded.since_ms
         RETURNING epoch",
    )
    .bind(holder)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(epoch)
}

impl Lease {
    /// Tries once to lead (a candidate of its own): the lease, or `None` when another replica
    /// leads.
    pub async fn try_acquire(
        options: &PgConnectOptions,
        holder: &str,
    ) -> Result<Option<Lease>, sqlx::Error> {
        Ok(Candidate::new(options, holder).try_lead().await?.ok())
    }

    /// Waits until this replica leads, trying every `every`; `waiting` is told who leads each
    /// time it is someone else. Connection failures are retried too (the database may be the
    /// thing that is coming back).
    pub async fn acquire(
        options: &PgConnectOptions,
        holder: &str,
        every: Duration,
        mut waiting: impl FnMut(Option<Leader>),
    ) -> Lease {
        let mut candidate = Candidate::new(options, holder);
        loop {
            candidate = match candidate.try_lead().await {
                Ok(Ok(lease)) => return lease,
                Ok(Err((candidate, leader))) => {
                    waiting(leader);
                    candidate
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not ask for the lease; trying again");
                    Candidate::new(options, holder)
                }
            };
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

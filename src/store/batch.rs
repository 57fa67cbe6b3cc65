//! Group commit for the small writes every message makes (its inbox row, its audit line, its
//! conversation, its run's steps and sends). Callers queue their write and get a future; one thread
//! takes everything queued, writes it in one transaction and answers each caller. Under load a
//! thousand messages cost one commit instead of a thousand.
//!
//! The thread owns a SQLite connection of its own and runs each statement as a plain call,
//! prepared once and cached. Through sqlx every statement was a hand-over to the connection's
//! worker thread and back, about 0.1 ms each on a busy machine, and that, not SQLite, bounded
//! the bot's intake (BENCHMARKS.md, "Issue 13").

use super::checkpoint;
use super::inbox::{self, InboxEntry};
use super::{to_i64, Failure};
use aof_actors::ids::{InboxSeq, WaId};
use aof_actors::model::{now_ms, AuditEntry, Conversation, StatusUpdate};
use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, OpenFlags, ToSql, TransactionBehavior};
use std::path::Path;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most writes in one transaction: bounds how long one commit holds the database.
const MAX_BATCH: usize = 1024;

/// Most writes other than intake in one transaction: bounds how long an acknowledgement waits
/// behind the flows' own writes when both pile up.
const MAX_OTHER: usize = 64;

/// Distinct statements the writer keeps prepared (there are about thirty).
const PREPARED: usize = 64;

/// A value bound to a statement's parameter.
#[derive(Debug)]
pub enum Arg {
    /// TEXT.
    Text(String),
    /// INTEGER.
    Int(i64),
    /// NULL.
    Null,
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_owned())
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}

impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

impl ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Text(s) => ToSqlOutput::from(s.as_str()),
            Arg::Int(n) => ToSqlOutput::from(*n),
            Arg::Null => ToSqlOutput::Owned(Value::Null),
        })
    }
}

/// One queued write.
enum Write {
    /// Keeps events in the inbox and records statuses; answers each event's row (`None`: a
    /// duplicate).
    Keep(
        Vec<InboxEntry>,
        Vec<StatusUpdate>,
        oneshot::Sender<Result<Vec<Option<InboxSeq>>, Failure>>,
    ),
    /// One statement; answers how many rows it changed.
    Exec(
        &'static str,
        Vec<Arg>,
        oneshot::Sender<Result<u64, Failure>>,
    ),
    /// Statements that commit together, in order; answers the rows each changed.
    Statements(Vec<Statement>, oneshot::Sender<Result<Vec<u64>, Failure>>),
}

/// A statement and its parameters.
pub type Statement = (&'static str, Vec<Arg>);

/// Writes an audit line: at, kind, who, detail.
pub(super) const AUDIT_INSERT: &str =
    "INSERT INTO audit_log (at_ms, kind, who, detail) VALUES (?1, ?2, ?3, ?4)";

/// The queue in front of the writer thread.
#[derive(Clone, Debug)]
pub struct GroupWriter {
    queue: mpsc::UnboundedSender<Write>,
    /// Keeps of inbound events: the HTTP answers wait for them, so they go first.
    intake: mpsc::UnboundedSender<Write>,
    /// Asks the thread to commit what is queued and stop.
    stop: mpsc::UnboundedSender<oneshot::Sender<()>>,
}

/// The writer thread is gone (the store was closed).
fn stopped() -> Failure {
    Failure::WriterStopped
}

impl GroupWriter {
    /// Opens the writer's own connection to the database file at `path` (migrated already) and
    /// starts its thread.
    pub fn start(path: &Path, busy_timeout: Duration) -> Result<GroupWriter, Failure> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(busy_timeout)?;
        // Per connection: the file is in WAL mode already (sqlx set it); NORMAL is durable across
        // a crash of the process in WAL mode.
        connection.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        connection.pragma_update(None, "wal_autocheckpoint", checkpoint::WRITER_PAGES)?;
        connection.set_prepared_statement_cache_capacity(PREPARED);
        let (queue, writes) = mpsc::unbounded_channel();
        let (intake, keeps) = mpsc::unbounded_channel();
        let (stop, stops) = mpsc::unbounded_channel();
        // The checkpoint thread lives as long as the writer's: it stops when this is dropped.
        let (checkpoints, stop_checkpoints) = std::sync::mpsc::channel::<()>();
        checkpoint::start(path, busy_timeout, stop_checkpoints)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::Corrupt(format!("the writer's runtime: {e}")))?;
        std::thread::Builder::new()
            .name("aof-store-writer".into())
            .spawn(move || runtime.block_on(run(connection, checkpoints, keeps, writes, stops)))
            .map_err(|e| Failure::Corrupt(format!("the writer's thread: {e}")))?;
        Ok(GroupWriter {
            queue,
            intake,
            stop,
        })
    }

    async fn ask<T>(
        &self,
        write: impl FnOnce(oneshot::Sender<Result<T, Failure>>) -> Write,
    ) -> Result<T, Failure> {
        let (reply, answer) = oneshot::channel();
        let write = write(reply);
        let queue = match write {
            Write::Keep(..) => &self.intake,
            _ => &self.queue,
        };
        queue.send(write).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Commits what is queued, then stops the thread (and closes its connection); later writes
    /// fail with [`Failure::WriterStopped`]. Returns once the thread has stopped.
    pub async fn close(&self) {
        let (done, stopped) = oneshot::channel();
        if self.stop.send(done).is_ok() {
            drop(stopped.await);
        }
    }

    /// See [`super::inbox::keep`].
    pub async fn keep(
        &self,
        entries: Vec<InboxEntry>,
        statuses: Vec<StatusUpdate>,
    ) -> Result<Vec<Option<InboxSeq>>, Failure> {
        self.ask(|reply| Write::Keep(entries, statuses, reply))
            .await
    }

    /// Runs one statement in the next group commit; the rows it changed.
    pub async fn exec(&self, sql: &'static str, args: Vec<Arg>) -> Result<u64, Failure> {
        self.ask(|reply| Write::Exec(sql, args, reply)).await
    }

    /// Runs statements in the next group commit, all or none; the rows each changed. Every write
    /// of the hot path goes through here: one writer never waits on SQLite's lock (whose busy
    /// handler sleeps in steps of milliseconds), while two writers would.
    pub async fn statements(&self, statements: Vec<Statement>) -> Result<Vec<u64>, Failure> {
        self.ask(|reply| Write::Statements(statements, reply)).await
    }

    /// See [`aof_actors::ports::Store::save_conversation`].
    pub async fn save_conversation(&self, who: WaId, c: Conversation) -> Result<(), Failure> {
        let body = serde_json::to_string(&c)?;
        let sql =
            "INSERT INTO conversations (wa_id, version, body, updated_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(wa_id) DO UPDATE SET
                 version = excluded.version, body = excluded.body, updated_ms = excluded.updated_ms
             WHERE excluded.version > conversations.version";
        let args = vec![
            who.as_str().into(),
            to_i64(c.version).into(),
            body.into(),
            now_ms().into(),
        ];
        self.exec(sql, args).await.map(drop)
    }

    /// See [`aof_actors::ports::Store::audit`].
    pub async fn audit(&self, entry: AuditEntry) -> Result<(), Failure> {
        let detail = serde_json::to_string(&entry.detail)?;
        let sql = AUDIT_INSERT;
        let args = vec![
            now_ms().into(),
            entry.kind.into(),
            entry.who.into(),
            detail.into(),
        ];
        self.exec(sql, args).await.map(drop)
    }
}

/// Commits what is queued, the keeps of inbound events and the other writes in turns: every keep
/// waiting as one transaction, then up to [`MAX_OTHER`] other writes as another, and so on, so
/// that an acknowledgement waits for at most one batch of the flows' writes and the flows are
/// never starved by a flood of notifications. Answers each writer; ends when asked to stop (after
/// committing what was queued before) or when every queue is closed and empty, and then stops the
/// checkpoint thread (by dropping `checkpoints`).
async fn run(
    mut connection: Connection,
    checkpoints: std::sync::mpsc::Sender<()>,
    mut keeps: mpsc::UnboundedReceiver<Write>,
    mut writes: mpsc::UnboundedReceiver<Write>,
    mut stops: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let (mut keeps_open, mut writes_open) = (true, true);
    let mut stopping = None;
    while keeps_open || writes_open || !batch.is_empty() {
        if stopping.is_none() {
            if let Ok(done) = stops.try_recv() {
                // What was queued before the stop is committed first; nothing after it.
                stopping = Some(done);
                keeps.close();
                writes.close();
            }
        }
        take_waiting(&mut keeps, &mut batch, MAX_BATCH);
        if !batch.is_empty() {
            commit_and_answer(&mut connection, &mut batch);
        }
        take_waiting(&mut writes, &mut batch, MAX_OTHER);
        if !batch.is_empty() {
            commit_and_answer(&mut connection, &mut batch);
            continue;
        }
        if stopping.is_some() {
            break;
        }
        let next = tokio::select! {
            biased;
            write = keeps.recv(), if keeps_open => {
                keeps_open = write.is_some();
                write
            }
            write = writes.recv(), if writes_open => {
                writes_open = write.is_some();
                write
            }
            Some(done) = stops.recv() => {
                stopping = Some(done);
                keeps.close();
                writes.close();
                None
            }
            else => None,
        };
        batch.extend(next);
    }
    drop(connection);
    drop(checkpoints);
    if let Some(done) = stopping {
        let _ = done.send(());
    }
}

/// Moves the writes `queue` holds now into `batch`, until `batch` holds `up_to`.
fn take_waiting(queue: &mut mpsc::UnboundedReceiver<Write>, batch: &mut Vec<Write>, up_to: usize) {
    while batch.len() < up_to {
        match queue.try_recv() {
            Ok(write) => batch.push(write),
            Err(_) => break,
        }
    }
}

/// Commits `batch` and answers each of its writers; empties it.
fn commit_and_answer(connection: &mut Connection, batch: &mut Vec<Write>) {
    match commit(connection, batch) {
        Ok(answers) => {
            for (write, answer) in batch.drain(..).zip(answers) {
                answer.send_to(write);
            }
        }
        // One bad write must not fail the others: each alone, in its own transaction.
        Err(_) => {
            for write in batch.drain(..) {
                let mut one = vec![write];
                match commit(connection, &one) {
                    Ok(mut answers) => answers.remove(0).send_to(one.remove(0)),
                    Err(e) => Answer::Failed(e).send_to(one.remove(0)),
                }
            }
        }
    }
}

/// What one write produced.
enum Answer {
    Kept(Vec<Option<InboxSeq>>),
    Rows(u64),
    AllRows(Vec<u64>),
    Failed(Failure),
}

impl Answer {
    fn send_to(self, write: Write) {
        // A caller that stopped waiting is not an error: its write is committed all the same.
        match (write, self) {
            (Write::Keep(.., reply), Answer::Kept(rows)) => drop(reply.send(Ok(rows))),
            (Write::Exec(.., reply), Answer::Rows(n)) => drop(reply.send(Ok(n))),
            (Write::Statements(_, reply), Answer::AllRows(n)) => drop(reply.send(Ok(n))),
            (Write::Statements(_, reply), Answer::Failed(e)) => drop(reply.send(Err(e))),
            (Write::Statements(_, reply), _) => drop(reply.send(Err(stopped()))),
            (Write::Keep(.., reply), Answer::Failed(e)) => drop(reply.send(Err(e))),
            (Write::Exec(.., reply), Answer::Failed(e)) => drop(reply.send(Err(e))),
            (Write::Keep(.., reply), _) => drop(reply.send(Err(stopped()))),
            (Write::Exec(.., reply), _) => drop(reply.send(Err(stopped()))),
        }
    }
}

/// Writes `batch` in one transaction; each write's answer, or the first failure (then nothing of
/// the batch is kept).
fn commit(connection: &mut Connection, batch: &[Write]) -> Result<Vec<Answer>, Failure> {
    // A transaction that failed is rolled back when dropped; should that rollback fail too (a
    // full disk), the connection would stay inside it and refuse every later batch with "cannot
    // start a transaction within a transaction" until a restart.
    if !connection.is_autocommit() {
        if let Err(e) = connection.execute_batch("ROLLBACK") {
            tracing::warn!(error = %e, "could not roll back the store writer's failed transaction");
        }
    }
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let answers = batch
        .iter()
        .map(|write| apply(&tx, write))
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit()?;
    Ok(answers)
}

fn apply(connection: &Connection, write: &Write) -> Result<Answer, Failure> {
    match write {
        Write::Keep(entries, statuses, _) => {
            Ok(Answer::Kept(inbox::keep(connection, entries, statuses)?))
        }
        Write::Exec(sql, args, _) => Ok(Answer::Rows(execute(connection, sql, args)?)),
        Write::Statements(statements, _) => {
            Ok(Answer::AllRows(execute_all(connection, statements)?))
        }
    }
}

/// Runs one statement; the rows it changed.
fn execute(connection: &Connection, sql: &str, args: &[Arg]) -> Result<u64, Failure> {
    let mut statement = connection.prepare_cached(sql)?;
    let changed = statement.execute(rusqlite::params_from_iter(args))?;
    Ok(changed as u64)
}

/// Runs statements in order; the rows each changed.
pub(super) fn execute_all(
    connection: &Connection,
    statements: &[Statement],
) -> Result<Vec<u64>, Failure> {
    statements
        .iter()
        .map(|(sql, args)| execute(connection, sql, args))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An audit line of `kind` and nothing else.
    fn audit(kind: &str) -> AuditEntry {
        AuditEntry {
            kind: kind.into(),
            who: None,
            detail: serde_json::json!({}),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_failing_write_does_not_fail_the_others_in_its_batch() {
        let (_dir, _url, store) = crate::store::tests::fresh_store().await;
        let writer = store.writer.clone();
        // Queued together, so they share a commit until the bad one fails it.
        let entry = InboxEntry {
            kind: "message",
            once: Some("wamid.1".into()),
            open_key: None,
            body: "{}".into(),
            audit: None,
        };
        let (a, bad, b, kept) = tokio::join!(
            writer.audit(audit("first")),
            writer.exec("INSERT INTO no_such_table (x) VALUES (?1)", vec![1.into()]),
            writer.audit(audit("second")),
            writer.keep(vec![entry.clone(), entry], vec![]),
        );
        assert!(a.is_ok() && b.is_ok(), "the good writes are committed");
        assert!(bad.is_err(), "the bad one reports its error");
        let kept = kept.unwrap();
        assert!(
            kept[0].is_some() && kept[1].is_none(),
            "a repeated id is not new: {kept:?}"
        );
        let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM audit_log ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert_eq!(kinds, ["first", "second"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn statements_keep_their_values_and_row_counts() {
        let (_dir, _url, store) = crate::store::tests::fresh_store().await;
        let writer = store.writer.clone();
        let tricky = "it's; DROP TABLE audit_log; -- ?1 \u{1F6A8} ''";
        let insert = "INSERT INTO audit_log (at_ms, kind, who, detail) VALUES (?1, ?2, ?3, ?4)";
        let audit =
            |kind: &str, who: Option<&str>| vec![1.into(), kind.into(), who.into(), tricky.into()];
        // Queued together: one commit.
        let (a, b, both) = tokio::join!(
            writer.exec(insert, audit("first", Some("+1555"))),
            writer.exec(insert, audit("second", None)),
            writer.statements(vec![
                (insert, audit("third", None)),
                (
                    "UPDATE audit_log SET who = 'x' WHERE kind = 'nobody'",
                    vec![]
                ),
            ]),
        );
        let (nul, d) = tokio::join!(
            writer.exec(
                insert,
                vec![1.into(), "nul\0byte".into(), Arg::Null, "{}".into()]
            ),
            writer.exec(insert, audit("fourth", None)),
        );
        assert_eq!(d.unwrap(), 1);
        assert_eq!((a.unwrap(), b.unwrap(), nul.unwrap()), (1, 1, 1));
        assert_eq!(both.unwrap(), [1, 0], "each statement's own count");
        let rows: Vec<(String, Option<String>, String)> =
            sqlx::query_as("SELECT kind, who, detail FROM audit_log ORDER BY id")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        let kinds: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(kinds, ["first", "second", "third", "nul\0byte", "fourth"]);
        assert_eq!(rows[0].1.as_deref(), Some("+1555"));
        assert_eq!(rows[1].1, None);
        assert!(rows
            .iter()
            .filter(|r| r.0 != "nul\0byte")
            .all(|r| r.2 == tricky));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn closing_commits_what_was_queued_and_refuses_what_comes_after() {
        let (_dir, _url, store) = crate::store::tests::fresh_store().await;
        let writer = store.writer.clone();
        let queued = writer.audit(audit("before"));
        let (queued, ()) = tokio::join!(queued, writer.close());
        assert!(queued.is_ok(), "queued before the close: committed");
        assert!(matches!(
            writer.audit(audit("after")).await,
            Err(Failure::WriterStopped)
        ));
        let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM audit_log")
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert_eq!(kinds, ["before"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_the_writer_commits_reaches_the_database_file_without_waiting_for_its_checkpoint()
    {
        let (dir, _url, store) = crate::store::tests::fresh_store().await;
        let file = dir.path().join("data/aof.db");
        let size = || std::fs::metadata(&file).map_or(0, |m| m.len());
        let before = size();
        // About 130 pages: far below the writer's own checkpoint (10,000) and SQLite's default
        // (1,000), so only the checkpoint thread copies them into the file.
        let detail = "x".repeat(1000);
        for i in 0..500 {
            let entry = AuditEntry {
                kind: format!("line {i}"),
                who: None,
                detail: serde_json::json!(detail),
            };
            store.writer.audit(entry).await.expect("written");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while size() < before + 400_000 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            size() >= before + 400_000,
            "the database file grew from {before} to {} bytes",
            size()
        );
    }
}

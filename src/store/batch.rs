//! Group commit for the small writes every message makes (its inbox row, its audit line, its
//! conversation). Callers queue their write and get a future; one task takes everything queued,
//! writes it in one transaction and answers each caller. Under load a thousand messages cost one
//! commit instead of a thousand, and the pool sees one waiter instead of a thousand.

use super::inbox::{self, InboxEntry};
use super::{to_i64, Failure};
use aof_actors::ids::{InboxSeq, WaId};
use aof_actors::model::{now_ms, AuditEntry, Conversation, StatusUpdate};
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

/// Most writes in one transaction: bounds how long one commit holds the database.
const MAX_BATCH: usize = 1024;

/// Most writes other than intake in one transaction: bounds how long an acknowledgement waits
/// behind the flows' own writes when both pile up. Measured with `aof-load --only ingest`: 8 gave
/// the most intake (7,000/s at 64 in flight) and the fewest runs handled (~550/s), 64 the reverse
/// (3,600/s, ~950/s); a pager is for the runs (BENCHMARKS.md, "Issue 13").
const MAX_OTHER: usize = 64;

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

/// The queue in front of the group-commit task.
#[derive(Clone, Debug)]
pub struct GroupWriter {
    queue: mpsc::UnboundedSender<Write>,
    /// Keeps of inbound events: the HTTP answers wait for them, so they go first.
    intake: mpsc::UnboundedSender<Write>,
}

/// The group-commit task is gone (its runtime stopped).
fn stopped() -> Failure {
    Failure::WriterStopped
}

impl GroupWriter {
    /// Starts the task on the current Tokio runtime.
    pub fn start(pool: SqlitePool) -> GroupWriter {
        let (queue, writes) = mpsc::unbounded_channel();
        let (intake, keeps) = mpsc::unbounded_channel();
        // A thread of its own: every statement is a hand-over to SQLite's worker thread and back,
        // and on a thread shared with the actors each hand-over waited for their turn.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => {
                let spawned = std::thread::Builder::new()
                    .name("aof-store-writer".into())
                    .spawn(move || runtime.block_on(run(pool, keeps, writes)));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "could not start the store's writer thread");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not build the store writer's runtime; writing on the caller's");
                tokio::spawn(run(pool, keeps, writes));
            }
        }
        GroupWriter { queue, intake }
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
        let sql = "INSERT INTO audit_log (at_ms, kind, who, detail) VALUES (?1, ?2, ?3, ?4)";
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
/// never starved by a flood of notifications. Answers each writer; ends when both queues are
/// closed and empty.
async fn run(
    pool: SqlitePool,
    mut keeps: mpsc::UnboundedReceiver<Write>,
    mut writes: mpsc::UnboundedReceiver<Write>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let (mut keeps_open, mut writes_open) = (true, true);
    while keeps_open || writes_open || !batch.is_empty() {
        take_waiting(&mut keeps, &mut batch, MAX_BATCH);
        if !batch.is_empty() {
            commit_and_answer(&pool, &mut batch).await;
        }
        take_waiting(&mut writes, &mut batch, MAX_OTHER);
        if !batch.is_empty() {
            commit_and_answer(&pool, &mut batch).await;
            continue;
        }
        let next = tokio::select! {
            write = keeps.recv(), if keeps_open => {
                keeps_open = write.is_some();
                write
            }
            write = writes.recv(), if writes_open => {
                writes_open = write.is_some();
                write
            }
            else => None,
        };
        batch.extend(next);
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
async fn commit_and_answer(pool: &SqlitePool, batch: &mut Vec<Write>) {
    match commit(pool, batch).await {
        Ok(answers) => {
            for (write, answer) in batch.drain(..).zip(answers) {
                answer.send_to(write);
            }
        }
        // One bad write must not fail the others: each alone, in its own transaction.
        Err(_) => {
            for write in batch.drain(..) {
                let mut one = vec![write];
                match commit(pool, &mut one).await {
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

async fn commit(pool: &SqlitePool, batch: &mut [Write]) -> Result<Vec<Answer>, Failure> {
    let mut tx = pool.begin().await?;
    let mut answers = Vec::with_capacity(batch.len());
    let mut rest = &batch[..];
    while let Some(write) = rest.first() {
        // A run of plain statements goes to SQLite in one round trip when it can be written out.
        let plain = rest
            .iter()
            .take_while(|w| matches!(w, Write::Exec(..) | Write::Statements(..)))
            .count();
        if plain > 1 {
            if let Some(script) = Script::of(&rest[..plain]) {
                answers.extend(script.run(&mut tx).await?);
                rest = &rest[plain..];
                continue;
            }
        }
        answers.push(apply(&mut tx, write).await?);
        rest = &rest[1..];
    }
    tx.commit().await?;
    Ok(answers)
}

/// Plain statements written out with their values as literals, to run in one round trip to
/// SQLite's thread: 128 inserts cost 13 ms one by one and under 2 ms this way.
struct Script {
    sql: String,
    /// How many statements each write has, in order.
    shape: Vec<(bool, usize)>,
}

impl Script {
    /// The script of `writes` (only `Exec` and `Statements`), or `None` when a value cannot be
    /// written as a literal (a NUL in a text) or a statement has a parameter that is not `?N`:
    /// those go one by one, with their values bound.
    fn of(writes: &[Write]) -> Option<Script> {
        let mut sql = String::new();
        let mut shape = Vec::with_capacity(writes.len());
        for write in writes {
            match write {
                Write::Exec(text, args, _) => {
                    inline(&mut sql, text, args)?;
                    shape.push((false, 1));
                }
                Write::Statements(statements, _) => {
                    for (text, args) in statements {
                        inline(&mut sql, text, args)?;
                    }
                    shape.push((true, statements.len()));
                }
                Write::Keep(..) => return None,
            }
        }
        Some(Script { sql, shape })
    }

    /// Runs the script in `tx`; each write's answer.
    async fn run(self, tx: &mut Transaction<'static, Sqlite>) -> Result<Vec<Answer>, Failure> {
        use futures_util::StreamExt as _;
        let results: Vec<_> = sqlx::raw_sql(&self.sql)
            .execute_many(&mut **tx)
            .collect()
            .await;
        let mut rows = Vec::with_capacity(results.len());
        for result in results {
            rows.push(result?.rows_affected());
        }
        let mut rows = rows.into_iter();
        let mut answers = Vec::with_capacity(self.shape.len());
        for (many, count) in self.shape {
            let these: Vec<u64> = rows.by_ref().take(count).collect();
            if these.len() != count {
                return Err(Failure::Corrupt(
                    "a script answered fewer statements than it had".into(),
                ));
            }
            answers.push(if many {
                Answer::AllRows(these)
            } else {
                Answer::Rows(these[0])
            });
        }
        Ok(answers)
    }
}

/// Appends `text` with each `?N` replaced by the literal of `args[N - 1]`, and a `;`.
fn inline(sql: &mut String, text: &str, args: &[Arg]) -> Option<()> {
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '?' {
            sql.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some((_, d)) = chars.next_if(|(_, d)| d.is_ascii_digit()) {
            digits.push(d);
        }
        let index: usize = digits.parse().ok()?;
        match args.get(index.checked_sub(1)?)? {
            Arg::Int(n) => sql.push_str(&n.to_string()),
            Arg::Null => sql.push_str("NULL"),
            Arg::Text(t) if t.contains('\0') => return None,
            Arg::Text(t) => {
                sql.push('\'');
                sql.push_str(&t.replace('\'', "''"));
                sql.push('\'');
            }
        }
    }
    sql.push_str(";\n");
    Some(())
}

async fn apply(tx: &mut Transaction<'static, Sqlite>, write: &Write) -> Result<Answer, Failure> {
    match write {
        Write::Keep(entries, statuses, _) => {
            Ok(Answer::Kept(inbox::keep(tx, entries, statuses).await?))
        }
        Write::Exec(sql, args, _) => Ok(Answer::Rows(execute(tx, sql, args).await?)),
        Write::Statements(statements, _) => Ok(Answer::AllRows(execute_all(tx, statements).await?)),
    }
}

/// Runs one statement in `tx`; the rows it changed.
async fn execute(
    tx: &mut Transaction<'static, Sqlite>,
    sql: &str,
    args: &[Arg],
) -> Result<u64, Failure> {
    let mut query = sqlx::query(sql);
    for arg in args {
        query = match arg {
            Arg::Text(s) => query.bind(s.as_str()),
            Arg::Int(n) => query.bind(*n),
            Arg::Null => query.bind(None::<i64>),
        };
    }
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

/// Runs statements in `tx`, in order; the rows each changed.
pub(super) async fn execute_all(
    tx: &mut Transaction<'static, Sqlite>,
    statements: &[Statement],
) -> Result<Vec<u64>, Failure> {
    let mut rows = Vec::with_capacity(statements.len());
    for (sql, args) in statements {
        rows.push(execute(tx, sql, args).await?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn one_failing_write_does_not_fail_the_others_in_its_batch() {
        let (_dir, _url, store) = crate::store::tests::fresh_store().await;
        let writer = store.writer.clone();
        let audit = |kind: &str| AuditEntry {
            kind: kind.into(),
            who: None,
            detail: serde_json::json!({}),
        };
        // Queued together, so they share a commit until the bad one fails it.
        let entry = InboxEntry {
            kind: "message",
            once: Some("wamid.1".into()),
            open_key: None,
            body: "{}".into(),
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
    async fn statements_sent_as_one_script_keep_their_values_and_row_counts() {
        let (_dir, _url, store) = crate::store::tests::fresh_store().await;
        let writer = store.writer.clone();
        let tricky = "it's; DROP TABLE audit_log; -- ?1 \u{1F6A8} ''";
        let insert = "INSERT INTO audit_log (at_ms, kind, who, detail) VALUES (?1, ?2, ?3, ?4)";
        let audit =
            |kind: &str, who: Option<&str>| vec![1.into(), kind.into(), who.into(), tricky.into()];
        // Queued together: one script.
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
        // A NUL cannot be a literal: with another write, the batch goes bound, one by one.
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
}

//! Copies the write-ahead log into the database file on a thread of its own. SQLite does this in
//! the connection that commits, once the log passes a size: on the writer that was a pause every
//! few dozen commits (fsyncs included) with acknowledgements waiting behind it. This thread copies
//! what has been committed every quarter of a second without blocking the writer (a passive
//! checkpoint), so that when the writer's own checkpoint comes (at [`WRITER_PAGES`], which also
//! bounds the log: only the writer, between two commits, can start it again from the beginning)
//! little is left to copy.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// How often the log is copied into the database file.
const EVERY: Duration = Duration::from_millis(250);

/// Pages of log after which the writer checkpoints itself (SQLite's default is 1,000).
pub(super) const WRITER_PAGES: u32 = 10_000;

/// Starts the checkpointing thread on the database at `path`; it runs until `stop` is dropped.
pub(super) fn start(
    path: &Path,
    busy_timeout: Duration,
    stop: Receiver<()>,
) -> Result<(), super::Failure> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(busy_timeout)?;
    std::thread::Builder::new()
        .name("aof-checkpoint".into())
        .spawn(move || run(&connection, &stop))
        .map_err(|e| super::Failure::Corrupt(format!("the checkpoint thread: {e}")))?;
    Ok(())
}

fn run(connection: &Connection, stop: &Receiver<()>) {
    loop {
        match stop.recv_timeout(EVERY) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if let Err(e) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "could not checkpoint the store's log; trying again shortly");
        }
    }
}

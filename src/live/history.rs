//! The sandbox page's history in the store: every event the hub publishes is written (in batches,
//! off the hot path), and a restarted sandbox starts from the newest ones. An approver who reloads
//! the page after a restart still sees the request they are answering, and its buttons still work.

use super::{Live, LiveEvent, Numbered, HISTORY};
use crate::store::Repositories;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Rows kept in the store: more than the page is shown, so that the sandbox's numbering survives
/// a burst of events between two prunes.
const KEEP: u64 = 2 * HISTORY as u64;

/// Most events written in one transaction.
const BATCH: usize = 256;

/// A hub holding the newest events the store kept, numbering on after them. Rows that no longer
/// parse (written by another version) are skipped.
pub async fn restore(store: &dyn Repositories) -> Live {
    let rows = match store.recent_page_events(HISTORY as u64).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "the sandbox page's history could not be read; it starts empty");
            Vec::new()
        }
    };
    let last = rows.last().map_or(0, |(seq, _)| *seq);
    let events: Vec<Numbered> = rows
        .into_iter()
        .filter_map(|(seq, text)| {
            let event = serde_json::from_str::<LiveEvent>(&text).ok()?;
            Some(Numbered { seq, event })
        })
        .collect();
    Live::restored(events, last)
}

/// Writes what `live` publishes to `store` until the hub is gone. Runs on the current arbiter.
pub fn keep(live: &Live, store: Arc<dyn Repositories>) {
    let (_, mut rx) = live.subscribe();
    actix_web::rt::spawn(async move {
        loop {
            let first = match rx.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "the sandbox page's history skipped events under load"
                    );
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            let rows: Vec<(u64, String)> = batch
                .iter()
                .filter_map(|n| Some((n.seq, serde_json::to_string(&n.event).ok()?)))
                .collect();
            // A failed write is logged by the store; the page's history is a convenience, the
            // bot's own records are elsewhere.
            let _ = store.append_page_events(&rows, KEEP).await;
        }
    });
}

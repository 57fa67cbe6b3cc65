//! The repositories of what people set from the chat about being on call: covers (`COVER`) and
//! silences (`SILENCE`), and their SQLite implementations.

use super::Fut;
use crate::store::{Cover, Silence, SqliteStore};

/// On-call covers set from the chat (`COVER`).
pub trait Covers: Send + Sync {
    /// Records a cover.
    fn add_cover<'a>(&'a self, cover: &'a Cover) -> Fut<'a, ()>;

    /// The covers in force at `at_ms`, the newest first.
    fn covers_at(&self, at_ms: i64) -> Fut<'_, Vec<Cover>>;
}

/// Services silenced from the chat (`SILENCE`), and the pages they held.
pub trait Silences: Send + Sync {
    /// Silences `service` until `until_ms` (a silence of it in force is replaced, keeping its list).
    fn add_silence<'a>(
        &'a self,
        service: &'a str,
        until_ms: i64,
        set_by: &'a str,
    ) -> Fut<'a, Silence>;

    /// The silence of `service` in force at `at_ms`.
    fn silence_of<'a>(&'a self, service: &'a str, at_ms: i64) -> Fut<'a, Option<Silence>>;

    /// Every silence in force at `at_ms`.
    fn silences_at(&self, at_ms: i64) -> Fut<'_, Vec<Silence>>;

    /// Adds `alert_id` to what silence `id` held.
    fn hold_page<'a>(&'a self, id: i64, alert_id: &'a str) -> Fut<'a, ()>;

    /// Lifts the silence of `service`: it, with what it held, or `None`.
    fn lift_silence<'a>(&'a self, service: &'a str) -> Fut<'a, Option<Silence>>;
}

impl Covers for SqliteStore {
    fn add_cover<'a>(&'a self, cover: &'a Cover) -> Fut<'a, ()> {
        Box::pin(SqliteStore::add_cover(self, cover))
    }

    fn covers_at(&self, at_ms: i64) -> Fut<'_, Vec<Cover>> {
        Box::pin(SqliteStore::covers_at(self, at_ms))
    }
}

impl Silences for SqliteStore {
    fn add_silence<'a>(
        &'a self,
        service: &'a str,
        until_ms: i64,
        set_by: &'a str,
    ) -> Fut<'a, Silence> {
        Box::pin(SqliteStore::add_silence(self, service, until_ms, set_by))
    }

    fn silence_of<'a>(&'a self, service: &'a str, at_ms: i64) -> Fut<'a, Option<Silence>> {
        Box::pin(SqliteStore::silence_of(self, service, at_ms))
    }

    fn silences_at(&self, at_ms: i64) -> Fut<'_, Vec<Silence>> {
        Box::pin(SqliteStore::silences_at(self, at_ms))
    }

    fn hold_page<'a>(&'a self, id: i64, alert_id: &'a str) -> Fut<'a, ()> {
        Box::pin(SqliteStore::hold_page(self, id, alert_id))
    }

    fn lift_silence<'a>(&'a self, service: &'a str) -> Fut<'a, Option<Silence>> {
        Box::pin(SqliteStore::lift_silence(self, service))
    }
}

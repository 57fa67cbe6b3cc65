//! War rooms: which people are in which incident's room, and what the room did (for the summary
//! sent when the incident is resolved). A person is in one room at a time: joining another moves
//! them.

use super::{logged, SqliteStore};
use aof_actors::model::now_ms;
use aof_actors::ports::StoreError;
use aof_actors::WaId;
use serde::Serialize;

/// One member of a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoomMember {
    /// Their number.
    pub wa: WaId,
    /// Their name when known.
    pub name: Option<String>,
    /// Unix milliseconds when they joined.
    pub joined_ms: i64,
}

/// A room's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RoomRecord {
    /// The incident.
    pub incident_id: String,
    /// The alert that paged for it, when there is one (its acknowledgement is the room's).
    pub alert_id: Option<String>,
    /// Unix milliseconds it opened.
    pub opened_ms: i64,
    /// Unix milliseconds it closed.
    pub closed_ms: Option<i64>,
    /// Messages relayed in it.
    pub updates: i64,
}

impl SqliteStore {
    /// Opens the room of an incident (again a no-op when it is open); links the paging alert.
    pub(crate) async fn open_room(
        &self,
        incident_id: &str,
        alert_id: Option<&str>,
    ) -> Result<(), StoreError> {
        logged("open_room", async {
            sqlx::query(
                "INSERT INTO war_rooms (incident_id, alert_id, opened_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(incident_id) DO UPDATE SET alert_id = COALESCE(war_rooms.alert_id, excluded.alert_id)",
            )
            .bind(incident_id)
            .bind(alert_id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// The room of an incident.
    pub(crate) async fn room(&self, incident_id: &str) -> Result<Option<RoomRecord>, StoreError> {
        logged("room", async {
            Ok(sqlx::query_as::<_, RoomRecord>(
                "SELECT incident_id, alert_id, opened_ms, closed_ms, updates FROM war_rooms WHERE incident_id = ?1",
            )
            .bind(incident_id)
            .fetch_optional(&self.pool)
            .await?)
        })
        .await
    }

    /// Puts a person in an open room, out of any other; `false` when they were already in it.
    pub(crate) async fn join_room(
        &self,
        incident_id: &str,
        who: &WaId,
        name: Option<&str>,
    ) -> Result<bool, StoreError> {
        logged("join_room", async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM war_room_members WHERE wa_id = ?1 AND incident_id <> ?2")
                .bind(who.as_str())
                .bind(incident_id)
                .execute(&mut *tx)
                .await?;
            let added = sqlx::query(
                "INSERT OR IGNORE INTO war_room_members (incident_id, wa_id, name, joined_ms) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(incident_id)
            .bind(who.as_str())
            .bind(name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(added == 1)
        })
        .await
    }

    /// Takes a person out of their room; the room they left.
    pub(crate) async fn leave_room(&self, who: &WaId) -> Result<Option<String>, StoreError> {
        logged("leave_room", async {
            let left = sqlx::query_scalar::<_, String>(
                "DELETE FROM war_room_members WHERE wa_id = ?1 RETURNING incident_id",
            )
            .bind(who.as_str())
            .fetch_optional(&self.pool)
            .await?;
            Ok(left)
        })
        .await
    }

    /// The members of a room, in the order they joined.
    pub(crate) async fn room_members(
        &self,
        incident_id: &str,
    ) -> Result<Vec<RoomMember>, StoreError> {
        logged("room_members", async {
            let rows = sqlx::query_as::<_, (String, Option<String>, i64)>(
                "SELECT wa_id, name, joined_ms FROM war_room_members WHERE incident_id = ?1 ORDER BY joined_ms, rowid",
            )
            .bind(incident_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .filter_map(|(wa, name, joined_ms)| Some(RoomMember { wa: WaId::parse(&wa)?, name, joined_ms }))
                .collect())
        })
        .await
    }

    /// Counts one relayed message.
    pub(crate) async fn note_room_update(&self, incident_id: &str) -> Result<(), StoreError> {
        logged("note_room_update", async {
            sqlx::query("UPDATE war_rooms SET updates = updates + 1 WHERE incident_id = ?1")
                .bind(incident_id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// Closes a room: its record and its former members; `None` when it was not open.
    pub(crate) async fn close_room(
        &self,
        incident_id: &str,
    ) -> Result<Option<(RoomRecord, Vec<RoomMember>)>, StoreError> {
        let members = self.room_members(incident_id).await?;
        let closed = logged("close_room", async {
            let mut tx = self.pool.begin().await?;
            let record = sqlx::query_as::<_, RoomRecord>(
                "UPDATE war_rooms SET closed_ms = ?2 WHERE incident_id = ?1 AND closed_ms IS NULL
                 RETURNING incident_id, alert_id, opened_ms, closed_ms, updates",
            )
            .bind(incident_id)
            .bind(now_ms())
            .fetch_optional(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM war_room_members WHERE incident_id = ?1")
                .bind(incident_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(record)
        })
        .await?;
        Ok(closed.map(|record| (record, members)))
    }

    /// The open room a person is in, if any.
    pub(crate) async fn room_of(&self, who: &WaId) -> Result<Option<String>, StoreError> {
        logged("room_of", async {
            Ok(sqlx::query_scalar::<_, String>(
                "SELECT m.incident_id FROM war_room_members m
                 JOIN war_rooms r ON r.incident_id = m.incident_id
                 WHERE m.wa_id = ?1 AND r.closed_ms IS NULL
                 ORDER BY m.joined_ms DESC LIMIT 1",
            )
            .bind(who.as_str())
            .fetch_optional(&self.pool)
            .await?)
        })
        .await
    }

    /// Everyone in an open room, for routing after a restart.
    pub(crate) async fn room_memberships(&self) -> Result<Vec<(WaId, String)>, StoreError> {
        logged("memberships", async {
            let rows = sqlx::query_as::<_, (String, String)>(
                "SELECT m.wa_id, m.incident_id FROM war_room_members m
                 JOIN war_rooms r ON r.incident_id = m.incident_id WHERE r.closed_ms IS NULL",
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .filter_map(|(wa, room)| Some((WaId::parse(&wa)?, room)))
                .collect())
        })
        .await
    }
}

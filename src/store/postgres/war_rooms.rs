//! War rooms on PostgreSQL: who is in which incident's room (SQLite's twin: `store/war_rooms.rs`).
//! A person is in one room at a time; joining, leaving and closing take an advisory lock, so that
//! replicas moving people at once cannot leave someone in two rooms or a closed room.

use super::PgStore;
use crate::store::{logged, Failure, Fut, RoomMember, RoomRecord, WarRooms};
use aof_actors::model::now_ms;
use aof_actors::WaId;
use sqlx::{PgConnection, PgPool};

const ROOM_COLUMNS: &str = "incident_id, alert_id, opened_ms, closed_ms, updates";

async fn open_room(
    pool: &PgPool,
    incident_id: &str,
    alert_id: Option<&str>,
) -> Result<(), Failure> {
    sqlx::query(
        "INSERT INTO war_rooms (incident_id, alert_id, opened_ms) VALUES ($1, $2, $3)
         ON CONFLICT (incident_id) DO UPDATE
             SET alert_id = COALESCE(war_rooms.alert_id, excluded.alert_id)",
    )
    .bind(incident_id)
    .bind(alert_id)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

async fn room(pool: &PgPool, incident_id: &str) -> Result<Option<RoomRecord>, Failure> {
    let query = format!("SELECT {ROOM_COLUMNS} FROM war_rooms WHERE incident_id = $1");
    Ok(sqlx::query_as::<_, RoomRecord>(&query)
        .bind(incident_id)
        .fetch_optional(pool)
        .await?)
}

async fn join_room(
    pool: &PgPool,
    incident_id: &str,
    who: &WaId,
    name: Option<&str>,
) -> Result<bool, Failure> {
    let mut tx = pool.begin().await?;
    super::Lock::Rooms.take(&mut tx).await?;
    sqlx::query("DELETE FROM war_room_members WHERE wa_id = $1 AND incident_id <> $2")
        .bind(who.as_str())
        .bind(incident_id)
        .execute(&mut *tx)
        .await?;
    let added = sqlx::query(
        "INSERT INTO war_room_members (incident_id, wa_id, name, joined_ms)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
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
}

async fn leave_room(pool: &PgPool, who: &WaId) -> Result<Option<String>, Failure> {
    let mut tx = pool.begin().await?;
    super::Lock::Rooms.take(&mut tx).await?;
    // A person is in one room at most; all rows are read so the statement runs to its end.
    let left: Vec<String> =
        sqlx::query_scalar("DELETE FROM war_room_members WHERE wa_id = $1 RETURNING incident_id")
            .bind(who.as_str())
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(left.into_iter().next())
}

/// The members of a room in the order they joined (PostgreSQL has no rowid: ties of the same
/// millisecond go by number).
async fn members(conn: &mut PgConnection, incident_id: &str) -> Result<Vec<RoomMember>, Failure> {
    let rows = sqlx::query_as::<_, (String, Option<String>, i64)>(
        "SELECT wa_id, name, joined_ms FROM war_room_members WHERE incident_id = $1
         ORDER BY joined_ms, wa_id COLLATE \"C\"",
    )
    .bind(incident_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(wa, name, joined_ms)| {
            Some(RoomMember {
                wa: WaId::parse(&wa)?,
                name,
                joined_ms,
            })
        })
        .collect())
}

async fn room_members(pool: &PgPool, incident_id: &str) -> Result<Vec<RoomMember>, Failure> {
    let mut conn = pool.acquire().await?;
    members(&mut conn, incident_id).await
}

async fn note_room_update(pool: &PgPool, incident_id: &str) -> Result<(), Failure> {
    sqlx::query("UPDATE war_rooms SET updates = updates + 1 WHERE incident_id = $1")
        .bind(incident_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Reads the members, closes the room and empties it in one transaction under the lock: whoever
/// is reported is whoever was taken out.
async fn close_room(
    pool: &PgPool,
    incident_id: &str,
) -> Result<Option<(RoomRecord, Vec<RoomMember>)>, Failure> {
    let mut tx = pool.begin().await?;
    super::Lock::Rooms.take(&mut tx).await?;
    let members = members(&mut tx, incident_id).await?;
    let query = format!(
        "UPDATE war_rooms SET closed_ms = $2 WHERE incident_id = $1 AND closed_ms IS NULL
         RETURNING {ROOM_COLUMNS}"
    );
    let record = sqlx::query_as::<_, RoomRecord>(&query)
        .bind(incident_id)
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM war_room_members WHERE incident_id = $1")
        .bind(incident_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(record.map(|record| (record, members)))
}

async fn room_of(pool: &PgPool, who: &WaId) -> Result<Option<String>, Failure> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT m.incident_id FROM war_room_members m
         JOIN war_rooms r ON r.incident_id = m.incident_id
         WHERE m.wa_id = $1 AND r.closed_ms IS NULL
         ORDER BY m.joined_ms DESC LIMIT 1",
    )
    .bind(who.as_str())
    .fetch_optional(pool)
    .await?)
}

async fn room_memberships(pool: &PgPool) -> Result<Vec<(WaId, String)>, Failure> {
    let rows = sqlx::query_as::<_, (String, String)>(
        "SELECT m.wa_id, m.incident_id FROM war_room_members m
         JOIN war_rooms r ON r.incident_id = m.incident_id WHERE r.closed_ms IS NULL
         ORDER BY m.joined_ms, m.wa_id COLLATE \"C\"",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(wa, room)| Some((WaId::parse(&wa)?, room)))
        .collect())
}

impl WarRooms for PgStore {
    fn open_room<'a>(&'a self, incident_id: &'a str, alert_id: Option<&'a str>) -> Fut<'a, ()> {
        Box::pin(logged(
            "open_room",
            open_room(&self.pool, incident_id, alert_id),
        ))
    }

    fn room<'a>(&'a self, incident_id: &'a str) -> Fut<'a, Option<RoomRecord>> {
        Box::pin(logged("room", room(&self.pool, incident_id)))
    }

    fn join_room<'a>(
        &'a self,
        incident_id: &'a str,
        who: &'a WaId,
        name: Option<&'a str>,
    ) -> Fut<'a, bool> {
        Box::pin(logged(
            "join_room",
            join_room(&self.pool, incident_id, who, name),
        ))
    }

    fn leave_room<'a>(&'a self, who: &'a WaId) -> Fut<'a, Option<String>> {
        Box::pin(logged("leave_room", leave_room(&self.pool, who)))
    }

    fn room_members<'a>(&'a self, incident_id: &'a str) -> Fut<'a, Vec<RoomMember>> {
        Box::pin(logged(
            "room_members",
            room_members(&self.pool, incident_id),
        ))
    }

    fn note_room_update<'a>(&'a self, incident_id: &'a str) -> Fut<'a, ()> {
        Box::pin(logged(
            "note_room_update",
            note_room_update(&self.pool, incident_id),
        ))
    }

    fn close_room<'a>(
        &'a self,
        incident_id: &'a str,
    ) -> Fut<'a, Option<(RoomRecord, Vec<RoomMember>)>> {
        Box::pin(logged("close_room", close_room(&self.pool, incident_id)))
    }

    fn room_of<'a>(&'a self, who: &'a WaId) -> Fut<'a, Option<String>> {
        Box::pin(logged("room_of", room_of(&self.pool, who)))
    }

    fn room_memberships<'a>(&'a self) -> Fut<'a, Vec<(WaId, String)>> {
        Box::pin(logged("memberships", room_memberships(&self.pool)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::testing::fresh_database;

    #[tokio::test(flavor = "current_thread")]
    async fn a_person_joining_rooms_on_several_replicas_at_once_ends_in_one() {
        let Some(db) = fresh_database().await else {
            return;
        };
        let store = db.store().await;
        let who = WaId::parse("15550001111").expect("a number");
        let rooms: Vec<String> = (0..8).map(|i| format!("INC-{i}")).collect();
        for room in &rooms {
            store.open_room(room, None).await.expect("opens");
        }
        let joins = rooms.iter().map(|room| store.join_room(room, &who, None));
        let joined = futures_util::future::join_all(joins).await;
        assert!(joined.into_iter().all(|j| j.expect("joins")));
        let memberships = store.room_memberships().await.expect("reads");
        assert_eq!(memberships.len(), 1, "{memberships:?}");
        let room = store.room_of(&who).await.expect("reads").expect("in one");
        let (record, members) = store.close_room(&room).await.expect("ok").expect("open");
        assert_eq!((record.incident_id, members.len()), (room, 1));
        assert!(store.leave_room(&who).await.expect("ok").is_none());
        store.close().await;
    }
}

-- War rooms: the bot is the room (the Cloud API has no group chats). One row per room, keyed by
-- the incident, and its members.
CREATE TABLE war_rooms (
    incident_id TEXT PRIMARY KEY,
    alert_id TEXT,
    opened_ms INTEGER NOT NULL,
    closed_ms INTEGER,
    updates INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE war_room_members (
    incident_id TEXT NOT NULL,
    wa_id TEXT NOT NULL,
    name TEXT,
    joined_ms INTEGER NOT NULL,
    PRIMARY KEY (incident_id, wa_id)
);

CREATE INDEX war_room_members_by_person ON war_room_members (wa_id, joined_ms);

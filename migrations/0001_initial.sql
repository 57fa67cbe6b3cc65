-- The durable state of aof: everything that must survive a restart.
-- Times are Unix milliseconds (`*_ms`) unless named after Meta's own seconds; JSON columns hold
-- serde_json text of the types in aof-actors (`QueuedJob`, `Conversation`, ...).

-- Inbound message ids already handled, so that Meta's redeliveries are dropped.
CREATE TABLE processed_messages (
    id      TEXT    PRIMARY KEY NOT NULL,
    seen_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The furthest delivery state of each outbound message; `rank` orders the states
-- (accepted 0 < sent 1 < delivered 2 < read 3 < failed 4) so that updates only move forward.
CREATE TABLE message_status (
    wamid       TEXT    PRIMARY KEY NOT NULL,
    state       TEXT    NOT NULL,
    rank        INTEGER NOT NULL,
    recipient   TEXT,
    error_code  INTEGER,
    error_title TEXT,
    status_ts   INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);

-- A session's context and pending expectations; the highest version wins.
CREATE TABLE conversations (
    wa_id      TEXT    PRIMARY KEY NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- The outbound queue until Meta accepted a message (then `sent`) or it was given up (`failed`).
CREATE TABLE outbox (
    id         TEXT    PRIMARY KEY NOT NULL,
    body       TEXT    NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
    wamid      TEXT,
    error_code INTEGER,
    error      TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX outbox_state_created ON outbox (state, created_ms);

-- What each accepted wamid was about, so that replies, button taps and statuses find their alert.
CREATE TABLE outbound_messages (
    wamid   TEXT    PRIMARY KEY NOT NULL,
    job_id  TEXT    NOT NULL,
    to_wa   TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    about   TEXT,
    flow    TEXT,
    sent_ms INTEGER NOT NULL
);

-- Template sends per UTC day, for rate_limits.templates_per_day.
CREATE TABLE template_usage (
    day   TEXT    PRIMARY KEY NOT NULL,
    count INTEGER NOT NULL
);

-- Timers not fired yet (escalations, approval expiry).
CREATE TABLE timers (
    id         TEXT    PRIMARY KEY NOT NULL,
    flow       TEXT    NOT NULL,
    input      TEXT    NOT NULL,
    fire_at_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX timers_fire_at ON timers (fire_at_ms);

-- Who did what, when; newest first by id.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    who    TEXT,
    detail TEXT    NOT NULL
);

-- One row per flow run: what started it and, once ended, how it went.
CREATE TABLE runs (
    run_id      TEXT    PRIMARY KEY NOT NULL,
    flow        TEXT    NOT NULL,
    trigger     TEXT    NOT NULL,
    outcome     TEXT,
    steps       TEXT,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER
);

-- Incidents of the built-in incident-manager agent; `seq` allocates INC-0001, INC-0002, ...
CREATE TABLE incidents (
    id          TEXT    PRIMARY KEY NOT NULL,
    seq         INTEGER NOT NULL UNIQUE,
    title       TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('open', 'resolved')),
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    resolved_ms INTEGER,
    body        TEXT    NOT NULL
);
CREATE INDEX incidents_status_created ON incidents (status, created_ms);

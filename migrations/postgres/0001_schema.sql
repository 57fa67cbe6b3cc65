-- The durable state of aof on PostgreSQL: the same tables as SQLite's migrations (`migrations/`,
-- which tell why each exists), in PostgreSQL's dialect. Times are Unix milliseconds (`*_ms`, BIGINT);
-- JSON columns hold serde_json text, as on SQLite, so that both backends read the same rows.

CREATE TABLE processed_messages (
    id      TEXT   PRIMARY KEY,
    seen_at BIGINT NOT NULL
);

CREATE TABLE message_status (
    wamid       TEXT   PRIMARY KEY,
    state       TEXT   NOT NULL,
    rank        BIGINT NOT NULL,
    recipient   TEXT,
    error_code  BIGINT,
    error_title TEXT,
    status_ts   BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL
);

CREATE TABLE conversations (
    wa_id      TEXT   PRIMARY KEY,
    version    BIGINT NOT NULL,
    body       TEXT   NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE outbound_messages (
    wamid   TEXT   PRIMARY KEY,
    job_id  TEXT   NOT NULL,
    to_wa   TEXT   NOT NULL,
    kind    TEXT   NOT NULL,
    about   TEXT,
    flow    TEXT,
    sent_ms BIGINT NOT NULL
);

CREATE TABLE template_usage (
    day   TEXT   PRIMARY KEY,
    count BIGINT NOT NULL
);

CREATE TABLE timers (
    id         TEXT   PRIMARY KEY,
    flow       TEXT   NOT NULL,
    input      TEXT   NOT NULL,
    fire_at_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX timers_fire_at ON timers (fire_at_ms);

CREATE TABLE audit_log (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms  BIGINT NOT NULL,
    kind   TEXT   NOT NULL,
    who    TEXT,
    detail TEXT   NOT NULL
);

CREATE TABLE runs (
    run_id      TEXT   PRIMARY KEY,
    flow        TEXT   NOT NULL,
    trigger     TEXT   NOT NULL,
    outcome     TEXT,
    steps       TEXT,
    started_ms  BIGINT NOT NULL,
    finished_ms BIGINT
);

CREATE TABLE incidents (
    id          TEXT   PRIMARY KEY,
    seq         BIGINT NOT NULL UNIQUE,
    title       TEXT   NOT NULL,
    severity    TEXT   NOT NULL,
    service     TEXT   NOT NULL,
    status      TEXT   NOT NULL CHECK (status IN ('open', 'resolved')),
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    resolved_ms BIGINT,
    body        TEXT   NOT NULL
);
CREATE INDEX incidents_status_created ON incidents (status, created_ms);

CREATE TABLE alerts (
    id                    TEXT   PRIMARY KEY,
    seq                   BIGINT NOT NULL UNIQUE,
    severity              TEXT   NOT NULL,
    service               TEXT   NOT NULL,
    message               TEXT   NOT NULL,
    runbook_url           TEXT,
    source                TEXT   NOT NULL
        CHECK (source IN ('webhook', 'alertmanager', 'pagerduty', 'datadog')),
    fingerprint           TEXT,
    pagerduty_incident_id TEXT,
    paged                 TEXT   NOT NULL DEFAULT '[]',
    pages                 TEXT   NOT NULL DEFAULT '[]',
    state                 TEXT   NOT NULL
        CHECK (state IN ('firing', 'acknowledged', 'resolved')),
    acknowledged_by       TEXT,
    acknowledged_ms       BIGINT,
    resolved_by           TEXT,
    resolved_ms           BIGINT,
    fire_count            BIGINT NOT NULL DEFAULT 1,
    created_ms            BIGINT NOT NULL,
    updated_ms            BIGINT NOT NULL,
    transitions           TEXT   NOT NULL DEFAULT '[]',
    created_by            TEXT,
    notes                 TEXT   NOT NULL DEFAULT '[]'
);
CREATE INDEX alerts_state_created ON alerts (state, created_ms);
CREATE INDEX alerts_fingerprint ON alerts (fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX alerts_pagerduty ON alerts (pagerduty_incident_id)
    WHERE pagerduty_incident_id IS NOT NULL;
CREATE INDEX alerts_created_by ON alerts (created_by) WHERE created_by IS NOT NULL;

CREATE TABLE approvals (
    id            TEXT   PRIMARY KEY,
    seq           BIGINT NOT NULL UNIQUE,
    type          TEXT   NOT NULL,
    service       TEXT   NOT NULL,
    version       TEXT   NOT NULL,
    environment   TEXT   NOT NULL,
    requester     TEXT   NOT NULL,
    approvers     TEXT   NOT NULL,
    state         TEXT   NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by    TEXT,
    decided_at_ms BIGINT,
    expires_at    TEXT   NOT NULL,
    expires_ms    BIGINT NOT NULL,
    created_ms    BIGINT NOT NULL,
    body          TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX approvals_state_created ON approvals (state, created_ms);

CREATE TABLE war_rooms (
    incident_id TEXT   PRIMARY KEY,
    alert_id    TEXT,
    opened_ms   BIGINT NOT NULL,
    closed_ms   BIGINT,
    updates     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE war_room_members (
    incident_id TEXT   NOT NULL,
    wa_id       TEXT   NOT NULL,
    name        TEXT,
    joined_ms   BIGINT NOT NULL,
    PRIMARY KEY (incident_id, wa_id)
);
CREATE INDEX war_room_members_by_person ON war_room_members (wa_id, joined_ms);

CREATE TABLE page_events (
    seq   BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    event TEXT   NOT NULL
);

CREATE TABLE store_probe (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    at_ms BIGINT NOT NULL
);

CREATE TABLE inbox (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT   NOT NULL,
    open_key    TEXT,
    body        TEXT   NOT NULL,
    received_ms BIGINT NOT NULL,
    done_ms     BIGINT,
    outcome     TEXT
);
CREATE UNIQUE INDEX inbox_open_key ON inbox (open_key) WHERE done_ms IS NULL;
CREATE INDEX inbox_open ON inbox (seq) WHERE done_ms IS NULL;

CREATE TABLE run_journal (
    run_id TEXT   NOT NULL,
    step   TEXT   NOT NULL,
    entry  TEXT   NOT NULL,
    at_ms  BIGINT NOT NULL,
    PRIMARY KEY (run_id, step)
);

CREATE TABLE oncall_covers (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone      TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    until_ms   BIGINT NOT NULL,
    set_by     TEXT   NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX oncall_covers_until ON oncall_covers (until_ms);

CREATE TABLE silences (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service    TEXT   NOT NULL,
    until_ms   BIGINT NOT NULL,
    set_by     TEXT   NOT NULL,
    created_ms BIGINT NOT NULL,
    lifted_ms  BIGINT,
    held       TEXT   NOT NULL DEFAULT '[]'
);
CREATE INDEX silences_service ON silences (service, lifted_ms);

-- `seq` keeps the order jobs were queued in (SQLite's rowid does on SQLite): two queued in the
-- same millisecond are sent again in that order after a restart.
CREATE TABLE outbox (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    id          TEXT   PRIMARY KEY,
    body        TEXT   NOT NULL,
    state       TEXT   NOT NULL
        CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'folded')),
    wamid       TEXT,
    error_code  BIGINT,
    error       TEXT,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    folded_into TEXT
);
CREATE INDEX outbox_state_created ON outbox (state, created_ms);
CREATE INDEX outbox_folded_into ON outbox (folded_into) WHERE folded_into IS NOT NULL;

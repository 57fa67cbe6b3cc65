-- Alerts of the alert-manager agent and approval requests of the approval-manager agent.
-- Times are Unix milliseconds; JSON columns are written and read by src/store/alerts.rs and
-- src/store/approvals.rs only.

-- One row per alert; `seq` allocates ALT-0001, ALT-0002, ... An alert firing again (the same
-- Alertmanager fingerprint or PagerDuty incident while it is not resolved) updates its row and
-- counts `fire_count` instead of adding a row.
CREATE TABLE alerts (
    id                    TEXT    PRIMARY KEY NOT NULL,
    seq                   INTEGER NOT NULL UNIQUE,
    severity              TEXT    NOT NULL,
    service               TEXT    NOT NULL,
    message               TEXT    NOT NULL,
    runbook_url           TEXT,
    source                TEXT    NOT NULL
        CHECK (source IN ('webhook', 'alertmanager', 'pagerduty', 'datadog')),
    fingerprint           TEXT,
    pagerduty_incident_id TEXT,
    -- E.164 numbers of everyone paged about it, in paging order.
    paged                 TEXT    NOT NULL DEFAULT '[]',
    -- The same people with when each was paged: [{phone, at_ms}].
    pages                 TEXT    NOT NULL DEFAULT '[]',
    state                 TEXT    NOT NULL
        CHECK (state IN ('firing', 'acknowledged', 'resolved')),
    acknowledged_by       TEXT,
    acknowledged_ms       INTEGER,
    resolved_by           TEXT,
    resolved_ms           INTEGER,
    fire_count            INTEGER NOT NULL DEFAULT 1,
    created_ms            INTEGER NOT NULL,
    updated_ms            INTEGER NOT NULL,
    -- Every state it entered: [{state, at_ms, actor}], oldest first.
    transitions           TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX alerts_state_created ON alerts (state, created_ms);
CREATE INDEX alerts_fingerprint ON alerts (fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX alerts_pagerduty ON alerts (pagerduty_incident_id)
    WHERE pagerduty_incident_id IS NOT NULL;

-- One row per approval request; `seq` allocates APR-0001, APR-0002, ... `approvers` is the list
-- fixed at creation ([{name, phone}]); a decision is one conditional UPDATE, so the first wins.
-- `expires_at` is the RFC 3339 text flows compare with now(); `expires_ms` the same instant, for SQL.
CREATE TABLE approvals (
    id            TEXT    PRIMARY KEY NOT NULL,
    seq           INTEGER NOT NULL UNIQUE,
    type          TEXT    NOT NULL,
    service       TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    requester     TEXT    NOT NULL,
    approvers     TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by    TEXT,
    decided_at_ms INTEGER,
    expires_at    TEXT    NOT NULL,
    expires_ms    INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    -- The rest of the request (changes_url, replicas, ...), as the flow gave it.
    body          TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX approvals_state_created ON approvals (state, created_ms);

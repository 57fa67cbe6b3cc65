-- The outbox gains `folded`: a message that waited for one person and was said in a digest with
-- the others waiting for them (WhatsApp lets a person receive about one message every six
-- seconds). `folded_into` names the digest, whose delivery is the folded message's delivery. The
-- digest's row and its folded rows change in one commit. SQLite cannot change a CHECK in place,
-- so the table is rebuilt.
CREATE TABLE outbox_new (
    id          TEXT    PRIMARY KEY NOT NULL,
    body        TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'folded')),
    wamid       TEXT,
    error_code  INTEGER,
    error       TEXT,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    folded_into TEXT
);
INSERT INTO outbox_new (id, body, state, wamid, error_code, error, created_ms, updated_ms)
    SELECT id, body, state, wamid, error_code, error, created_ms, updated_ms FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_state_created ON outbox (state, created_ms);
CREATE INDEX outbox_folded_into ON outbox (folded_into) WHERE folded_into IS NOT NULL;

-- The outbox gains `sending`: recorded before the request to Meta leaves. After a crash such a
-- row waits for a status webhook naming it (`biz_opaque_callback_data` carries its id), which
-- marks it sent; only a row no status named is sent again. SQLite cannot change a CHECK in place,
-- so the table is rebuilt.
CREATE TABLE outbox_new (
    id         TEXT    PRIMARY KEY NOT NULL,
    body       TEXT    NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    wamid      TEXT,
    error_code INTEGER,
    error      TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
INSERT INTO outbox_new (id, body, state, wamid, error_code, error, created_ms, updated_ms)
    SELECT id, body, state, wamid, error_code, error, created_ms, updated_ms FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_state_created ON outbox (state, created_ms);

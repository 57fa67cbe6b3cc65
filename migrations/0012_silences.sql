-- Services silenced from the chat (SILENCE api-server 1h): their pages are held, not sent, and
-- listed when the silence is lifted (UNSILENCE, or its end). `held` is the alert ids, in order.
CREATE TABLE silences (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    service    TEXT    NOT NULL,
    until_ms   INTEGER NOT NULL,
    set_by     TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    lifted_ms  INTEGER,
    held       TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX silences_service ON silences (service, lifted_ms);

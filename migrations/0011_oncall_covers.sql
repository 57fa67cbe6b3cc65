-- Temporary on-call overrides from the chat (COVER): who takes the pager until when, and who set
-- it. The newest cover in force is paged first.
CREATE TABLE oncall_covers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    phone      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    until_ms   INTEGER NOT NULL,
    set_by     TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX oncall_covers_until ON oncall_covers (until_ms);

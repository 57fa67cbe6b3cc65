-- What the sandbox page showed (messages in and out, statuses, runs and their steps), numbered, so
-- that the page shows the same after a restart. Only the sandbox transport writes here; the newest
-- few thousand rows are kept.
CREATE TABLE page_events (
    seq   INTEGER PRIMARY KEY NOT NULL,
    at_ms INTEGER NOT NULL,
    event TEXT    NOT NULL
);

-- One row the readiness probe and start-up rewrite: the store is ready only while it takes a write
-- (a full disk or a read-only file answers reads and refuses writes).
CREATE TABLE store_probe (
    id    INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    at_ms INTEGER NOT NULL
);

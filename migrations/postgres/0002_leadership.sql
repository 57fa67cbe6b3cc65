-- Who leads among the replicas on this database. The lease itself is a session advisory lock held
-- on the leader's own connection (it dies with the process or the connection); this row only
-- counts takeovers: each new leader bumps `epoch`, and the leader's writes that must not come
-- from a stale leader check it (fencing).
CREATE TABLE leadership (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    epoch    BIGINT NOT NULL,
    holder   TEXT   NOT NULL,
    since_ms BIGINT NOT NULL
);

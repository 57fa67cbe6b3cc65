-- Fencing (issue 16): a replica that no longer leads cannot write.
--
-- The leader's connections carry its epoch in the session setting `aof.epoch`. Every statement
-- that writes a table checks it against `leadership.epoch` and fails with SQLSTATE AOFLD when a
-- newer leader took over. The check holds the shared side of an advisory lock until its
-- transaction ends, and a takeover bumps the epoch under the exclusive side, so a write the old
-- leader had under way is committed before the new leader reads anything, or refused after.
-- Connections without `aof.epoch` (a follower keeping webhooks in the inbox, tests, `simulate`)
-- are not fenced.

-- The epoch of the leader that handed an inbox row over; 0: nobody yet (a follower kept it).
ALTER TABLE inbox ADD COLUMN claimed BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION aof_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mine TEXT := current_setting('aof.epoch', true);
BEGIN
    IF mine IS NULL OR mine = '' THEN
        RETURN NULL;
    END IF;
    -- The key of postgres::Lock::Fence ('aof:fenc' read as a big-endian integer).
    PERFORM pg_advisory_xact_lock_shared(7020942745105952355);
    IF (SELECT epoch FROM leadership WHERE id = 1) IS DISTINCT FROM mine::BIGINT THEN
        RAISE EXCEPTION 'this replica no longer leads: its epoch % is not the current one', mine
            USING ERRCODE = 'AOFLD';
    END IF;
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'processed_messages', 'message_status', 'conversations', 'outbound_messages',
        'template_usage', 'timers', 'audit_log', 'runs', 'incidents', 'alerts', 'approvals',
        'war_rooms', 'war_room_members', 'page_events', 'inbox', 'run_journal', 'oncall_covers',
        'silences', 'outbox'
    ] LOOP
        EXECUTE format(
            'CREATE TRIGGER aof_fence BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I
             FOR EACH STATEMENT EXECUTE FUNCTION aof_fence()', t);
    END LOOP;
END;
$$;

-- Each completed step of a run that has not ended, committed before the next step starts: a run
-- resumed after a crash skips these steps and sees their outputs. `step` is the step's place
-- (`2`, or `2.1` inside a subflow); `entry` is what later steps see of it and whom it asked.
-- A run's rows go when it ends.
CREATE TABLE run_journal (
    run_id TEXT    NOT NULL,
    step   TEXT    NOT NULL,
    entry  TEXT    NOT NULL,
    at_ms  INTEGER NOT NULL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;

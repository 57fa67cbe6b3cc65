-- Every event the bot acknowledged (a WhatsApp message, an alert, a PagerDuty event, a flow
-- webhook), kept before the 2xx and open (`done_ms` NULL) until it has been handled; a restart
-- hands the open rows over again in `seq` order. `open_key` is unique among open rows, so two
-- deliveries of one alert at the same time are handled once and a later one again.
CREATE TABLE inbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    open_key    TEXT,
    body        TEXT    NOT NULL,
    received_ms INTEGER NOT NULL,
    done_ms     INTEGER,
    outcome     TEXT
);
CREATE UNIQUE INDEX inbox_open_key ON inbox (open_key) WHERE done_ms IS NULL;
CREATE INDEX inbox_open ON inbox (seq) WHERE done_ms IS NULL;

-- The run step that recorded an alert (`<run>/<step>/<service>/<fingerprint>`): when that step
-- runs again after a crash, it gets the same alert back instead of recording a second one.
ALTER TABLE alerts ADD COLUMN created_by TEXT;
CREATE INDEX alerts_created_by ON alerts (created_by) WHERE created_by IS NOT NULL;

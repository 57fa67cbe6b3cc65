-- What happened to an alert besides its states: a page that was not delivered, who it went to
-- next ([{at_ms, text}], oldest first). INFO shows them.
ALTER TABLE alerts ADD COLUMN notes TEXT NOT NULL DEFAULT '[]';

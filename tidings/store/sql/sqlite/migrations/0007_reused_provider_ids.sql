-- SMSCs reuse their message ids (after a restart, or when their counter wraps), so one provider id may
-- name many messages over time. A receipt goes to the message still waiting for one (Submitted), the
-- most recently submitted if several: the index holds only those, however many finished messages share
-- the id. Parts are keyed by their message; several messages' parts may share a provider id.
DROP INDEX messages_ext_id;
CREATE INDEX messages_waiting_ext_id ON messages (ext_id) WHERE status = 'Submitted' AND ext_id IS NOT NULL;

CREATE TABLE ext_parts_by_message (
    ext_id  TEXT    NOT NULL,
    transid TEXT    NOT NULL,
    part    INTEGER NOT NULL,
    outcome TEXT,
    PRIMARY KEY (transid, part)
);
-- A message sent again in parts left its first send's rows behind: the later ones are its parts now.
INSERT INTO ext_parts_by_message (ext_id, transid, part, outcome)
SELECT ext_id, transid, part, outcome FROM ext_parts
WHERE rowid IN (SELECT max(rowid) FROM ext_parts GROUP BY transid, part);
DROP TABLE ext_parts;
ALTER TABLE ext_parts_by_message RENAME TO ext_parts;
CREATE INDEX ext_parts_ext_id ON ext_parts (ext_id);

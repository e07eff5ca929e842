-- SMSCs reuse their message ids (after a restart, or when their counter wraps), so one provider id may
-- name many messages over time. A receipt goes to the message still waiting for one (Submitted), the
-- most recently submitted if several: the index holds only those, however many finished messages share
-- the id. Parts are keyed by their message; several messages' parts may share a provider id.
DROP INDEX messages_ext_id;
CREATE INDEX messages_waiting_ext_id ON messages (ext_id) WHERE status = 'Submitted' AND ext_id IS NOT NULL;

ALTER TABLE ext_parts DROP CONSTRAINT ext_parts_pkey;
-- A message sent again in parts left its first send's rows behind: the later ones are its parts now.
DELETE FROM ext_parts AS a USING ext_parts AS b
WHERE a.transid = b.transid AND a.part = b.part AND a.ctid < b.ctid;
ALTER TABLE ext_parts ADD PRIMARY KEY (transid, part);
DROP INDEX ext_parts_transid;
CREATE INDEX ext_parts_ext_id ON ext_parts (ext_id);

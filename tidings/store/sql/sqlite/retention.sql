-- Named queries of the retention purge for the SQLite store (tidings/store/purge_sqlite.py). The rule is
-- tidings/store/purge.py's; :transids and :final are JSON arrays.

-- purge_scan --
-- The batch's candidates: the next :limit messages created before :before after the cursor
-- (:after_at, :after_seq), oldest first, on messages_created (which ends in the rowid, seq).
SELECT transid, created_at, seq FROM messages
WHERE created_at < :before AND (created_at, seq) > (:after_at, :after_seq)
ORDER BY created_at, seq LIMIT :limit;

-- purge_eligible --
-- Those of :transids that may go: final (:final), last changed before :before, no work left, every
-- notification sent or given up (written as "none in another state": a state added later holds the
-- message, and only notifications_transid can answer it), and no short link still valid at :now.
SELECT m.transid FROM messages AS m
WHERE m.transid IN (SELECT value FROM json_each(:transids))
  AND m.status IN (SELECT value FROM json_each(:final))
  AND m.updated_at < :before AND m.next_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM notifications AS n
                  WHERE n.transid = m.transid AND n.state NOT IN ('sent', 'failed'))
  AND NOT EXISTS (SELECT 1 FROM links AS l WHERE l.transid = m.transid AND l.expires_at > :now);

-- purge_events --
DELETE FROM events WHERE transid IN (SELECT value FROM json_each(:transids));

-- purge_notifications --
DELETE FROM notifications WHERE transid IN (SELECT value FROM json_each(:transids));

-- purge_attempts --
DELETE FROM attempts WHERE transid IN (SELECT value FROM json_each(:transids));

-- purge_links --
DELETE FROM links WHERE transid IN (SELECT value FROM json_each(:transids));

-- purge_ext_parts --
DELETE FROM ext_parts WHERE transid IN (SELECT value FROM json_each(:transids));

-- purge_messages --
DELETE FROM messages WHERE transid IN (SELECT value FROM json_each(:transids));

-- purge_inbound_scan --
-- The next :limit inbound messages received before :before after the cursor, oldest first
-- (inbound_received, migration 0019).
SELECT tid, received_at, seq FROM inbound
WHERE received_at < :before AND (received_at, seq) > (:after_at, :after_seq)
ORDER BY received_at, seq LIMIT :limit;

-- purge_inbound_eligible --
-- Those of :transids (tids) whose notification is sent or given up (or who had none).
SELECT i.tid FROM inbound AS i
WHERE i.tid IN (SELECT value FROM json_each(:transids))
  AND NOT EXISTS (SELECT 1 FROM notifications AS n
                  WHERE n.transid = i.tid AND n.state NOT IN ('sent', 'failed'));

-- purge_inbound --
DELETE FROM inbound WHERE tid IN (SELECT value FROM json_each(:transids));

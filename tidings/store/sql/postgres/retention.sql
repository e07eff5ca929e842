-- Named queries of the retention purge for the PostgreSQL store (tidings/store/purge_postgres.py). The
-- rule is tidings/store/purge.py's. Parameters are positional; the comment under each name lists them.

-- purge_try_lock --
-- name. One purging process at a time per schema: a session lock, held by one connection for the whole
-- pass and gone with it.
SELECT pg_try_advisory_lock(hashtextextended($1 || current_schema(), 0));

-- purge_unlock --
-- name
SELECT pg_advisory_unlock(hashtextextended($1 || current_schema(), 0));

-- purge_scan --
-- before, after_at, after_seq, limit. The batch's candidates: the next messages created before the cut-off
-- after the cursor, oldest first, on messages_created (created_at, seq).
SELECT transid, created_at, seq FROM messages
WHERE created_at < $1 AND (created_at, seq) > ($2, $3)
ORDER BY created_at, seq LIMIT $4;

-- purge_eligible --
-- transids, final status words, before, now. Those that may go: final, last changed before the cut-off,
-- no work left, every notification sent or given up, and no short link still valid. "Sent or given up" is
-- written as "none in another state": a state added later holds the message, and the test matches no
-- partial index of the unsent ones (notifications_backlog), which the planner, without statistics, ANDed
-- with notifications_transid: a walk of the whole backlog per message (0.3 ms each on 10,000 rows).
SELECT m.transid FROM messages AS m
WHERE m.transid = ANY($1::text[])
  AND m.status = ANY($2::text[])
  AND m.updated_at < $3 AND m.next_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM notifications AS n
                  WHERE n.transid = m.transid AND n.state NOT IN ('sent', 'failed'))
  AND NOT EXISTS (SELECT 1 FROM links AS l WHERE l.transid = m.transid AND l.expires_at > $4)
ORDER BY m.transid;

-- purge_lock_messages --
-- transids. Those no other transaction holds, locked: a change to one (a Read, a click's notification,
-- a report) waits for the purge and then finds no message.
SELECT transid FROM messages WHERE transid = ANY($1::text[]) ORDER BY transid FOR UPDATE SKIP LOCKED;

-- purge_lock_notifications --
-- transids. Their notifications, locked as resend_notification locks them, so that a resend either
-- comes first (and the message stays) or finds nothing.
SELECT count(*) FROM (SELECT 1 FROM notifications WHERE transid = ANY($1::text[]) ORDER BY seq FOR UPDATE)
AS locked;

-- purge_events --
-- transids
DELETE FROM events WHERE transid = ANY($1::text[]);

-- purge_notifications --
-- transids
DELETE FROM notifications WHERE transid = ANY($1::text[]);

-- purge_attempts --
-- transids
DELETE FROM attempts WHERE transid = ANY($1::text[]);

-- purge_links --
-- transids
DELETE FROM links WHERE transid = ANY($1::text[]);

-- purge_ext_parts --
-- transids
DELETE FROM ext_parts WHERE transid = ANY($1::text[]);

-- purge_messages --
-- transids
DELETE FROM messages WHERE transid = ANY($1::text[]);

-- purge_inbound_scan --
-- before, after_at, after_seq, limit. The next inbound messages received before the cut-off after the
-- cursor, oldest first (inbound_received, migration 0015).
SELECT tid, received_at, seq FROM inbound
WHERE received_at < $1 AND (received_at, seq) > ($2, $3)
ORDER BY received_at, seq LIMIT $4;

-- purge_inbound_eligible --
-- tids. Those whose notification is sent or given up (or who had none).
SELECT i.tid FROM inbound AS i
WHERE i.tid = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM notifications AS n
                  WHERE n.transid = i.tid AND n.state NOT IN ('sent', 'failed'))
ORDER BY i.tid;

-- purge_lock_inbound --
-- tids
SELECT tid FROM inbound WHERE tid = ANY($1::text[]) ORDER BY tid FOR UPDATE SKIP LOCKED;

-- purge_inbound --
-- tids
DELETE FROM inbound WHERE tid = ANY($1::text[]);

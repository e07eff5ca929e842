-- A message's next notification, found each time one of its notifications is sent or given up
-- (promote_next_notification). Without statistics (a fresh database, or autovacuum off or behind) the
-- planner read "WHERE transid = $0 AND state = 'waiting' ORDER BY seq LIMIT 1" as a walk of the whole
-- primary key, for a row that is usually not there: 0.1-0.3 s a statement at 140,000 notifications, and
-- one batch of results held its transaction (and the rows of its messages) for minutes. This index
-- answers it with one probe whatever the statistics say, and holds only the waiting rows.
CREATE INDEX notifications_waiting ON notifications (transid, seq) WHERE state = 'waiting';

-- The message log (GET /v1/messages, the console): newest first by (created_at, seq) within a service, with
-- one filter answered by an index each; every index ends in (created_at, seq), the log's order, so a
-- filtered page is one range read in order. The correlation id index skips messages without one. The
-- admin's view of every service reads messages_created. Content search has no index: it reads the service's
-- rows newest first until the page is full (docs/console.md has the figures).
CREATE INDEX messages_log ON messages (service_id, created_at, seq);
CREATE INDEX messages_log_channel ON messages (service_id, channel, created_at, seq);
CREATE INDEX messages_log_status ON messages (service_id, status, created_at, seq);
CREATE INDEX messages_log_address ON messages (service_id, address, created_at, seq);
CREATE INDEX messages_log_correlation ON messages (service_id, correlationid, created_at, seq)
    WHERE correlationid IS NOT NULL;
CREATE INDEX messages_created ON messages (created_at, seq);
-- The console's notification backlog per receiver: only the notifications still to send.
CREATE INDEX notifications_backlog ON notifications (service_id, url) WHERE state IN ('pending', 'waiting');

-- Retention (tidings/retention.py): a purge pass reads the inbound messages older than the retention in
-- the order they came, a batch at a time, from where the last batch stopped (received_at, seq). Outbound
-- messages need nothing new: messages_created (0013) serves them.
CREATE INDEX inbound_received ON inbound (received_at, seq);

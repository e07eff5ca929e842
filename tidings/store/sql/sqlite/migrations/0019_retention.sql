-- Retention (tidings/retention.py): a purge pass reads the inbound messages older than the retention in
-- the order they came, a batch at a time, from where the last batch stopped (received_at, then seq, the
-- rowid SQLite appends). Outbound messages need nothing new: messages_created (0017) serves them.
CREATE INDEX inbound_received ON inbound (received_at);

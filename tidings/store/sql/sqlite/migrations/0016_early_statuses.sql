-- A WhatsApp or Messenger status webhook (issue 12) can name a provider id no message was recorded with
-- yet: Meta may post `sent`/`delivered` before the send's own transaction commits. The status is kept
-- here, in the webhook's transaction, and taken (in arrival order, `seq`) by the transaction that records
-- the send with that id; `at` bounds its age (store/rows.py EARLY_RECEIPT_WINDOW_S) and drives the clean-up.
CREATE TABLE early_statuses (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    ext_id          TEXT NOT NULL,
    service_id      TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    additional_info TEXT NOT NULL DEFAULT '',
    at              REAL NOT NULL
);
CREATE INDEX early_statuses_ext_id ON early_statuses (ext_id);
CREATE INDEX early_statuses_at ON early_statuses (at);

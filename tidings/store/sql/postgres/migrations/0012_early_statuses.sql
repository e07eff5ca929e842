-- A WhatsApp or Messenger status webhook (issue 12) can name a provider id no message was recorded with
-- yet: Meta may post `sent`/`delivered` before the send's own transaction commits. The status is kept
-- here, in the webhook's transaction, and taken (in arrival order, `seq`) by the transaction that records
-- the send with that id; `at` bounds its age (store/rows.py EARLY_RECEIPT_WINDOW_S) and drives the clean-up.
CREATE TABLE early_statuses (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ext_id          text NOT NULL,
    service_id      text NOT NULL,
    outcome         text NOT NULL,
    additional_info text NOT NULL DEFAULT '',
    at              double precision NOT NULL
);
CREATE INDEX early_statuses_ext_id ON early_statuses (ext_id);
CREATE INDEX early_statuses_at ON early_statuses (at);

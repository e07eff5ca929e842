-- Every try at handing a message to its provider (issue 14: the console's message page), written in the
-- transaction that records the try's status change: when, the connector (label and kind), what went out
-- and what came back, secrets removed (tidings/channels/exchange.py), each text at most 4,096 characters.
-- A message keeps its first 50 retries (store/rows.py ATTEMPTS_KEPT: one throttled for days would
-- otherwise add a row every few seconds) and every try that ended otherwise (accepted, failed,
-- rerouted). Rows are read by transid only, in the order they were made (seq, the rowid).
CREATE TABLE attempts (
    seq       INTEGER PRIMARY KEY,
    transid   TEXT    NOT NULL,
    attempt   INTEGER NOT NULL,
    at        REAL    NOT NULL,
    connector TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    code      TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    request   TEXT    NOT NULL,
    answer    TEXT    NOT NULL
);
CREATE INDEX attempts_transid ON attempts (transid);

-- Every try at handing a message to its provider (issue 14: the console's message page), written in the
-- transaction that records the try's status change: when, the connector (label and kind), what went out
-- and what came back, secrets removed (tidings/channels/exchange.py), each text at most 4,096 characters.
-- A message keeps its first 50 retries (store/rows.py ATTEMPTS_KEPT: one throttled for days would
-- otherwise add a row every few seconds) and every try that ended otherwise (accepted, failed,
-- rerouted). Rows are read by transid only, in the order they were made: one index, (transid, seq), and
-- no primary key, so that each insert on the hot path updates one B-tree, not two.
CREATE TABLE attempts (
    seq       bigint GENERATED ALWAYS AS IDENTITY,
    transid   text             NOT NULL,
    attempt   integer          NOT NULL,
    at        double precision NOT NULL,
    connector text             NOT NULL,
    kind      text             NOT NULL,
    outcome   text             NOT NULL,
    code      text             NOT NULL,
    detail    text             NOT NULL,
    request   text             NOT NULL,
    answer    text             NOT NULL
);
CREATE INDEX attempts_transid ON attempts (transid, seq);

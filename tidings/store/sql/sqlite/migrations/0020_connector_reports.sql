-- What each process's connectors say about themselves (tidings/observe/cluster.py), for the console's
-- health page: one row per process and connector, its report as JSON (msgspec: the redacted
-- ConnectorReport, the channels routed to it), rewritten every PUBLISH_S, deleted when the process stops
-- and, for a process that did not stop cleanly, FORGET_AFTER_S after its last publication. `process` is
-- one run of a process (host:pid:nonce); host, pid, role (serve, worker) and started_at are how the page
-- names it.
CREATE TABLE connector_reports (
    process      TEXT    NOT NULL,
    connector    TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    role         TEXT    NOT NULL,
    started_at   REAL    NOT NULL,
    published_at REAL    NOT NULL,
    body         TEXT    NOT NULL,
    PRIMARY KEY (process, connector)
) WITHOUT ROWID;

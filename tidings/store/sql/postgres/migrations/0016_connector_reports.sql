-- What each process's connectors say about themselves (tidings/observe/cluster.py), for the console's
-- health page: one row per process and connector, its report as JSON (msgspec: the redacted
-- ConnectorReport, the channels routed to it), rewritten every PUBLISH_S, deleted when the process stops
-- and, for a process that did not stop cleanly, FORGET_AFTER_S after its last publication. `process` is
-- one run of a process (host:pid:nonce); host, pid, role (serve, worker) and started_at are how the page
-- names it. `published_at` is the database's clock, so hosts need not agree (as `processes.seen_at`).
CREATE TABLE connector_reports (
    process      text             NOT NULL,
    connector    text             NOT NULL,
    host         text             NOT NULL,
    pid          integer          NOT NULL,
    role         text             NOT NULL,
    started_at   double precision NOT NULL,
    published_at double precision NOT NULL,
    body         text             NOT NULL,
    PRIMARY KEY (process, connector)
);

-- Short links handed out in messages: one row per link per destination. The targets are not here: they
-- come from the service's configuration at click time, so a redirect never goes anywhere else.
CREATE TABLE links (
    code          TEXT    PRIMARY KEY,
    service_id    TEXT    NOT NULL,
    transid       TEXT    NOT NULL,
    linkid        INTEGER NOT NULL,
    expires_at    REAL,
    clicks        INTEGER NOT NULL DEFAULT 0,
    created_at    REAL    NOT NULL,
    last_click_at REAL
);
CREATE INDEX links_transid ON links (transid);

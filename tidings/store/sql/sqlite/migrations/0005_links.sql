-- Short links handed out in messages: one row per link per destination. A smart link's targets are not
-- here: they come from the service's configuration at click time. A shortened URL (SMS API shortenUrls)
-- keeps its target, the URL the service itself wrote in its message; `track` asks for Clicked
-- notifications.
CREATE TABLE links (
    code          TEXT    PRIMARY KEY,
    service_id    TEXT    NOT NULL,
    transid       TEXT    NOT NULL,
    linkid        INTEGER NOT NULL,  -- 0 for a shortened URL
    target        TEXT,
    track         INTEGER NOT NULL DEFAULT 0,
    expires_at    REAL,
    clicks        INTEGER NOT NULL DEFAULT 0,
    created_at    REAL    NOT NULL,
    last_click_at REAL
);
CREATE INDEX links_transid ON links (transid);

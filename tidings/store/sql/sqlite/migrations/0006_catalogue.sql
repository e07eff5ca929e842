-- The catalogue: services, templates, smart links and contact-policy groups in one table, each entry the
-- JSON of its config table (`service` always the owning service's id). `origin` says who owns the entry:
-- 'config' (the file seeds it at every start and removes it once the file no longer names it), 'admin'
-- (the admin API; kept across starts) or 'demo' (the zero-config service). `catalogue_revision` moves on
-- every change, so other processes can see that theirs is stale with one cheap read.
CREATE TABLE catalogue (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    origin     TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

CREATE TABLE catalogue_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO catalogue_revision (id, revision) VALUES (1, 1);

INSERT INTO catalogue (kind, name, body, origin, updated_at)
SELECT 'services', id,
       json_object('id', id, 'key', key, 'name', name, 'secret', secret,
                   'active', json(CASE WHEN active THEN 'true' ELSE 'false' END),
                   'notify_url', notify_url, 'tps', tps, 'senderids', json(senderids),
                   'inbound_url', inbound_url, 'numbers', json(numbers)),
       CASE WHEN id = 'svc-demo' THEN 'demo' ELSE 'config' END,
       CAST(strftime('%s', 'now') AS REAL)
FROM services;

DROP TABLE services;

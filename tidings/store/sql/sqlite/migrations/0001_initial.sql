-- Messages: one row per destination address. `next_at` is when the row next needs work (send it,
-- apply its due receipt, retry it); NULL once the message is final. `leased` marks rows a worker has
-- claimed, whose next_at was pushed out by the lease, so a restart can hand them out again at once.
-- `lane` orders due work: 0 for a receipt waiting to be applied (the message is already out), else the
-- message's priority (1 high, 2 normal, 3 low).
CREATE TABLE messages (
    seq           INTEGER PRIMARY KEY,
    transid       TEXT    NOT NULL UNIQUE,
    service_id    TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    address       TEXT    NOT NULL,
    address_type  TEXT    NOT NULL,
    content       TEXT    NOT NULL,
    parts         INTEGER NOT NULL DEFAULT 1,
    correlationid TEXT,
    callback_data TEXT,
    notify_url    TEXT,
    priority      INTEGER NOT NULL DEFAULT 2,
    lane          INTEGER NOT NULL DEFAULT 2,
    expiry        REAL,
    status        TEXT    NOT NULL,
    code          TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    created_at    REAL    NOT NULL,
    updated_at    REAL    NOT NULL,
    next_at       REAL,
    leased        INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    ext_id        TEXT,
    pending       TEXT,
    last_error    TEXT
);
CREATE INDEX messages_due ON messages (lane, next_at) WHERE next_at IS NOT NULL;
CREATE INDEX messages_leased ON messages (leased) WHERE leased = 1;

-- Status history after acceptance (the Queued entry is the message's created_at).
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    transid     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    code        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    at          REAL    NOT NULL
);
CREATE INDEX events_transid ON events (transid);

-- The notification outbox, written in the same transaction as the status change it reports. A
-- notification whose message has an earlier one still unfinished is 'waiting' (not claimable) and is
-- promoted to 'pending' when that one is sent or given up: receivers see each message's statuses in order,
-- and claims never wade through blocked rows.
CREATE TABLE notifications (
    seq         INTEGER PRIMARY KEY,
    event_id    TEXT    NOT NULL UNIQUE,
    transid     TEXT    NOT NULL,
    service_id  TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL,
    next_at     REAL    NOT NULL,
    leased      INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    last_error  TEXT
);
CREATE INDEX notifications_due ON notifications (next_at) WHERE state = 'pending';
CREATE INDEX notifications_transid ON notifications (transid);

CREATE TABLE services (
    id         TEXT PRIMARY KEY,
    key        TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    secret     TEXT    NOT NULL,
    active     INTEGER NOT NULL,
    notify_url TEXT    NOT NULL,
    tps        INTEGER NOT NULL,
    senderids  TEXT    NOT NULL
);

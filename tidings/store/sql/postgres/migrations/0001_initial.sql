-- The PostgreSQL schema: the same tables as SQLite's migrations 0001-0006 arrive at, in one step.
-- Times are seconds since the epoch (double precision), as in SQLite, so both stores share their code's
-- notion of time. JSON the application encodes and decodes itself is kept as bytea or text, untouched.

-- Messages: one row per destination address. `next_at` is when the row next needs work; NULL once final.
-- A claim sets `leased`, `leased_by` (the process) and pushes `next_at` out by the lease: a crashed
-- process's rows come due again when the lease ends, or sooner, once its heartbeat in `processes` stops. `lane` is 0 for a due receipt, else the priority (1 high, 2 normal, 3 low).
CREATE TABLE messages (
    seq           bigserial PRIMARY KEY,
    transid       text      NOT NULL UNIQUE,
    service_id    text      NOT NULL,
    channel       text      NOT NULL,
    address       text      NOT NULL,
    address_type  text      NOT NULL,
    content       bytea     NOT NULL,
    parts         integer   NOT NULL DEFAULT 1,
    correlationid text,
    callback_data text,
    notify_url    text,
    priority      integer   NOT NULL DEFAULT 2,
    lane          integer   NOT NULL DEFAULT 2,
    expiry        double precision,
    status        text      NOT NULL,
    code          text      NOT NULL,
    description   text      NOT NULL,
    created_at    double precision NOT NULL,
    updated_at    double precision NOT NULL,
    next_at       double precision,
    leased        boolean   NOT NULL DEFAULT false,
    leased_by     text,
    attempts      integer   NOT NULL DEFAULT 0,
    ext_id        text,
    pending       text,
    last_error    text,
    policy        bytea
);
CREATE INDEX messages_due_by_service ON messages (lane, service_id, next_at) WHERE next_at IS NOT NULL;
CREATE INDEX messages_ext_id ON messages (ext_id) WHERE ext_id IS NOT NULL;
-- The dispatcher's next wake-up; SQLite does without it (a skip scan), PostgreSQL has no skip scan.
CREATE INDEX messages_next_at ON messages (next_at) WHERE next_at IS NOT NULL;

CREATE TABLE events (
    seq         bigserial PRIMARY KEY,
    transid     text NOT NULL,
    status      text NOT NULL,
    code        text NOT NULL,
    description text NOT NULL,
    at          double precision NOT NULL
);
CREATE INDEX events_transid ON events (transid);

-- A message's notifications go one at a time, in order: the next one waits ('waiting') until the one
-- before it is sent or given up.
CREATE TABLE notifications (
    seq         bigserial PRIMARY KEY,
    event_id    text    NOT NULL UNIQUE,
    transid     text    NOT NULL,
    service_id  text    NOT NULL,
    url         text    NOT NULL,
    body        bytea   NOT NULL,
    state       text    NOT NULL DEFAULT 'pending',
    attempts    integer NOT NULL DEFAULT 0,
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL,
    next_at     double precision NOT NULL,
    leased      boolean NOT NULL DEFAULT false,
    leased_by   text,
    http_status integer,
    last_error  text
);
CREATE INDEX notifications_due ON notifications (next_at) WHERE state = 'pending';
CREATE INDEX notifications_transid ON notifications (transid);

CREATE TABLE ext_parts (
    ext_id  text    PRIMARY KEY,
    transid text    NOT NULL,
    part    integer NOT NULL,
    outcome text
);
CREATE INDEX ext_parts_transid ON ext_parts (transid);

CREATE TABLE early_receipts (
    key        text NOT NULL,
    receipt_id text NOT NULL,
    outcome    text NOT NULL,
    at         double precision NOT NULL
);
CREATE INDEX early_receipts_key ON early_receipts (key);
CREATE INDEX early_receipts_receipt ON early_receipts (receipt_id);

CREATE TABLE idempotency (
    service_id text  NOT NULL,
    key        text  NOT NULL,
    response   bytea NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (service_id, key)
);

CREATE TABLE inbound (
    seq         bigserial PRIMARY KEY,
    tid         text    NOT NULL UNIQUE,
    service_id  text,
    channel     text    NOT NULL,
    source      text    NOT NULL,
    destination text    NOT NULL,
    text        text    NOT NULL,
    parts       integer NOT NULL,
    received_at double precision NOT NULL
);

CREATE TABLE consents (
    service_id text    NOT NULL,
    group_id   text    NOT NULL,
    channel    text    NOT NULL,
    address    text    NOT NULL,
    consent    boolean NOT NULL,
    reason     text    NOT NULL DEFAULT '',
    source     text    NOT NULL DEFAULT '',
    expires    double precision,
    updated_at double precision NOT NULL,
    PRIMARY KEY (service_id, group_id, channel, address)
);

CREATE TABLE policy_sends (
    service_id text NOT NULL,
    group_id   text NOT NULL,
    channel    text NOT NULL,
    address    text NOT NULL,
    sent_at    double precision NOT NULL
);
CREATE INDEX policy_sends_key ON policy_sends (service_id, group_id, channel, address, sent_at);

CREATE TABLE links (
    code          text    PRIMARY KEY,
    service_id    text    NOT NULL,
    transid       text    NOT NULL,
    linkid        integer NOT NULL,  -- 0 for a shortened URL
    target        text,
    track         boolean NOT NULL DEFAULT false,
    expires_at    double precision,
    clicks        integer NOT NULL DEFAULT 0,
    created_at    double precision NOT NULL,
    last_click_at double precision
);
CREATE INDEX links_transid ON links (transid);

-- The catalogue (see the SQLite migration 0006 for what `origin` means).
CREATE TABLE catalogue (
    kind       text NOT NULL,
    name       text NOT NULL,
    body       text NOT NULL,
    origin     text NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE catalogue_revision (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision bigint  NOT NULL
);
INSERT INTO catalogue_revision (id, revision) VALUES (1, 1);

-- Every running process, with its last heartbeat (the database's clock, so hosts need not agree).
CREATE TABLE processes (
    id         text PRIMARY KEY,
    started_at double precision NOT NULL,
    seen_at    double precision NOT NULL
);
CREATE INDEX messages_leased_by ON messages (leased_by) WHERE leased;
CREATE INDEX notifications_leased_by ON notifications (leased_by) WHERE leased;

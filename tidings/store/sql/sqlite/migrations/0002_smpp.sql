-- Receipts find their message by the provider's id for it: `<connector>:<canonical id>`.
CREATE INDEX messages_ext_id ON messages (ext_id) WHERE ext_id IS NOT NULL;

-- The provider ids of every part of a message sent in several parts (one receipt comes for each). A
-- single-part message keeps its id in messages.ext_id alone. `outcome` is the part's receipt, once in.
CREATE TABLE ext_parts (
    ext_id  TEXT    PRIMARY KEY,
    transid TEXT    NOT NULL,
    part    INTEGER NOT NULL,
    outcome TEXT
);
CREATE INDEX ext_parts_transid ON ext_parts (transid);

-- Receipts that arrived before the submit they report was recorded (an SMSC may send the receipt before,
-- or in the same packet as, its submit_sm_resp). One row per candidate key of the receipt's id; the
-- record of the submit claims them.
CREATE TABLE early_receipts (
    key        TEXT NOT NULL,
    receipt_id TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    at         REAL NOT NULL
);
CREATE INDEX early_receipts_key ON early_receipts (key);
CREATE INDEX early_receipts_receipt ON early_receipts (receipt_id);

-- SMS API `Idempotency-Key`: the first answer, replayed for 24 hours.
CREATE TABLE idempotency (
    service_id TEXT NOT NULL,
    key        TEXT NOT NULL,
    response   BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (service_id, key)
);

-- Inbound (MO) messages, kept whether or not a service owns their number.
CREATE TABLE inbound (
    seq         INTEGER PRIMARY KEY,
    tid         TEXT    NOT NULL UNIQUE,
    service_id  TEXT,
    channel     TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    destination TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    parts       INTEGER NOT NULL,
    received_at REAL    NOT NULL
);

-- Consent records per service, channel category and address. group_id '' is the service-wide record
-- that the STOP / START keywords write; contact-policy groups add their own.
CREATE TABLE consents (
    service_id TEXT    NOT NULL,
    group_id   TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    consent    INTEGER NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    source     TEXT    NOT NULL DEFAULT '',
    expires    REAL,
    updated_at REAL    NOT NULL,
    PRIMARY KEY (service_id, group_id, channel, address)
);

-- Inbound SMS: where a service's MO messages go, and the numbers that are its own.
ALTER TABLE services ADD COLUMN inbound_url TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN numbers TEXT NOT NULL DEFAULT '[]';

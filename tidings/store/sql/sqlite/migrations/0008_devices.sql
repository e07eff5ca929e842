-- Push devices, registered by an app's backend (POST /v1/apps/{appid}/devices). A token is registered
-- once per app and provider: a second registration of it updates that row and keeps its device_id. The
-- unique index leads with (app_id, token) so that a lookup by token alone uses it too.
CREATE TABLE devices (
    device_id   TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL,
    service_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    platform    TEXT NOT NULL,
    provider    TEXT NOT NULL,
    token       TEXT NOT NULL,
    p256dh      TEXT NOT NULL DEFAULT '',
    auth        TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX devices_token ON devices (app_id, token, provider);
CREATE INDEX devices_user ON devices (app_id, user_id);
CREATE INDEX devices_customer ON devices (app_id, customer_id);

-- Addresses a provider said are gone for good (an unregistered token, a closed account), per service and
-- channel, written with the failure that said so: later messages to them fail without a provider call.
CREATE TABLE gone_addresses (
    service_id  TEXT NOT NULL,
    channel     TEXT NOT NULL,
    address     TEXT NOT NULL,
    code        TEXT NOT NULL,
    description TEXT NOT NULL,
    at          REAL NOT NULL,
    PRIMARY KEY (service_id, channel, address)
) WITHOUT ROWID;

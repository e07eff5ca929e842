-- Push devices, registered by an app's backend (POST /v1/apps/{appid}/devices). A token is registered
-- once per app and provider: a second registration of it updates that row and keeps its device_id. The
-- unique index leads with (app_id, token) so that a lookup by token alone uses it too.
CREATE TABLE devices (
    device_id   text PRIMARY KEY,
    app_id      text NOT NULL,
    service_id  text NOT NULL,
    user_id     text NOT NULL,
    customer_id text NOT NULL,
    platform    text NOT NULL,
    provider    text NOT NULL,
    token       text NOT NULL,
    p256dh      text NOT NULL DEFAULT '',
    auth        text NOT NULL DEFAULT '',
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL
);
CREATE UNIQUE INDEX devices_token ON devices (app_id, token, provider);
CREATE INDEX devices_user ON devices (app_id, user_id);
CREATE INDEX devices_customer ON devices (app_id, customer_id);

-- Addresses a provider said are gone for good (an unregistered token, a closed account), per service and
-- channel, written with the failure that said so: later messages to them fail without a provider call.
CREATE TABLE gone_addresses (
    service_id  text NOT NULL,
    channel     text NOT NULL,
    address     text NOT NULL,
    code        text NOT NULL,
    description text NOT NULL,
    at          double precision NOT NULL,
    PRIMARY KEY (service_id, channel, address)
);

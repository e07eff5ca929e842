-- The WhatsApp connector asks, before each batch, when each recipient last wrote to the service
-- (Store.last_inbound: the 24-hour customer-service window); the newest time is the index's last entry
-- for the source, so the lookup reads one entry per recipient.
CREATE INDEX inbound_last ON inbound (service_id, channel, source, received_at);

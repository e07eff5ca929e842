-- A message's contact-policy check, as the request asked for it (JSON: group, consent, cap); NULL once
-- the message has passed it, so a retried send is neither checked nor counted twice.
ALTER TABLE messages ADD COLUMN policy TEXT;

-- Messages that passed a frequency-capped check: what the caps count, per service, group, channel
-- category and address.
CREATE TABLE policy_sends (
    service_id TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    channel    TEXT NOT NULL,
    address    TEXT NOT NULL,
    sent_at    REAL NOT NULL
);
CREATE INDEX policy_sends_key ON policy_sends (service_id, group_id, channel, address, sent_at);

-- The v1 API's `gtrId`: a message's global transaction id (its destination object's entry), NULL when the
-- request had none. Each notification of the message keeps a copy, so the notifier can send it as the
-- x-wx-gtrid header without decoding the body.
ALTER TABLE messages ADD COLUMN gtrid TEXT;
ALTER TABLE notifications ADD COLUMN gtrid TEXT;

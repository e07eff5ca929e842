-- The v2 API (POST /v2/messages): `requestedReceipts` as the status words to notify, joined by commas;
-- NULL (every message of the other APIs) means every status. A v2 `sendAt` needs no column: it is the
-- message's first next_at.
ALTER TABLE messages ADD COLUMN receipts TEXT;

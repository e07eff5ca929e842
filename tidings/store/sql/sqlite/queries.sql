-- insert_message --
INSERT INTO messages (transid, service_id, channel, address, address_type, content, parts, correlationid,
                      callback_data, notify_url, priority, expiry, status, code, description,
                      created_at, updated_at, next_at)
VALUES (:transid, :service_id, :channel, :address, :address_type, :content, :parts, :correlationid,
        :callback_data, :notify_url, :priority, :expiry, 'Queued', '1001', 'Queued',
        :created_at, :created_at, :created_at);

-- claim_due --
-- Hand out due rows, highest priority first, and push their next_at out by the lease so no other
-- claim sees them until they are recorded or the lease runs out.
UPDATE messages SET leased = 1, next_at = :lease_until
WHERE seq IN (SELECT seq FROM messages WHERE next_at <= :now ORDER BY priority, next_at LIMIT :limit)
RETURNING seq, transid, service_id, channel, address, address_type, content, parts, correlationid,
          callback_data, notify_url, priority, expiry, status, attempts, ext_id, pending;

-- record_status --
UPDATE messages
SET status = :status, code = :code, description = :description, updated_at = :at, next_at = :next_at,
    leased = 0, attempts = :attempts, ext_id = coalesce(:ext_id, ext_id), pending = :pending,
    last_error = :error
WHERE transid = :transid;

-- reschedule --
UPDATE messages SET next_at = :next_at, leased = 0, attempts = :attempts, last_error = :error,
                    updated_at = :at
WHERE transid = :transid;

-- insert_event --
INSERT INTO events (transid, status, code, description, at)
VALUES (:transid, :status, :code, :description, :at);

-- insert_notification --
INSERT INTO notifications (event_id, transid, service_id, url, body, created_at, updated_at, next_at)
VALUES (:event_id, :transid, :service_id, :url, :body, :at, :at, :at);

-- claim_notifications --
-- Oldest due first, and never one whose earlier notification for the same message is still pending:
-- a receiver sees each message's statuses in order.
UPDATE notifications SET leased = 1, next_at = :lease_until
WHERE seq IN (
    SELECT n.seq FROM notifications n
    WHERE n.state = 'pending' AND n.next_at <= :now
      AND NOT EXISTS (SELECT 1 FROM notifications p
                      WHERE p.transid = n.transid AND p.state = 'pending' AND p.seq < n.seq)
    ORDER BY n.next_at LIMIT :limit)
RETURNING seq, event_id, transid, service_id, url, body, attempts;

-- finish_notification --
UPDATE notifications
SET state = :state, attempts = attempts + 1, updated_at = :at, next_at = :next_at, leased = 0,
    http_status = :http_status, last_error = :error
WHERE seq = :seq;

-- release_leases --
UPDATE messages SET leased = 0, next_at = :now WHERE leased = 1;

-- release_notification_leases --
UPDATE notifications SET leased = 0, next_at = :now WHERE leased = 1 AND state = 'pending';

-- upsert_service --
INSERT INTO services (id, key, name, secret, active, notify_url, tps, senderids)
VALUES (:id, :key, :name, :secret, :active, :notify_url, :tps, :senderids)
ON CONFLICT (id) DO UPDATE SET key = excluded.key, name = excluded.name, secret = excluded.secret,
    active = excluded.active, notify_url = excluded.notify_url, tps = excluded.tps,
    senderids = excluded.senderids;

-- load_services --
SELECT id, key, name, secret, active, notify_url, tps, senderids FROM services ORDER BY id;

-- get_message --
SELECT transid, service_id, channel, address, address_type, content, parts, correlationid, callback_data,
       notify_url, priority, expiry, status, code, description, created_at, updated_at, attempts, ext_id
FROM messages WHERE transid = :transid AND service_id = :service_id;

-- get_events --
SELECT status, code, description, at FROM events WHERE transid = :transid ORDER BY seq;

-- get_notifications --
SELECT event_id, url, state, attempts, http_status, last_error, created_at, updated_at
FROM notifications WHERE transid = :transid ORDER BY seq;

-- insert_message --
-- Positional parameters: binding a tuple is measurably cheaper than a dict on the accept hot path.
INSERT INTO messages (transid, service_id, channel, address, address_type, content, parts, correlationid,
                      callback_data, notify_url, priority, lane, expiry, created_at, updated_at, next_at,
                      policy, receipts, gtrid, status, code, description)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'Queued', '1001', 'Queued');

-- due_services --
-- The services with due work in a lane: a skip scan over the (lane, service_id, next_at) index, one seek
-- per service, however many rows each one has waiting.
WITH RECURSIVE s(id) AS (
    SELECT min(service_id) FROM messages WHERE lane = :lane AND next_at IS NOT NULL
    UNION ALL
    SELECT (SELECT min(service_id) FROM messages
            WHERE lane = :lane AND next_at IS NOT NULL AND service_id > s.id)
    FROM s WHERE s.id IS NOT NULL
)
SELECT id FROM s
WHERE id IS NOT NULL
  AND (SELECT min(next_at) FROM messages
       WHERE lane = :lane AND service_id = s.id AND next_at IS NOT NULL) <= :now;

-- claim_service --
-- Hand out one service's due rows of one lane, oldest first, and push their next_at out by the lease so
-- no other claim sees them until they are recorded or the lease runs out.
UPDATE messages SET leased = 1, next_at = :lease_until
WHERE seq IN (SELECT seq FROM messages
              WHERE lane = :lane AND service_id = :service_id AND next_at <= :now
              ORDER BY next_at LIMIT :limit)
RETURNING seq, transid, service_id, channel, address, address_type, content, parts, correlationid,
          callback_data, notify_url, priority, expiry, status, attempts, ext_id, pending, policy, receipts,
          gtrid;

-- next_due --
-- The earliest next_at of any lane and service: one index seek per (lane, service) pair.
WITH RECURSIVE s(lane, id) AS (
    SELECT lanes.lane, (SELECT min(service_id) FROM messages WHERE lane = lanes.lane AND next_at IS NOT NULL)
    FROM (SELECT 0 AS lane UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) AS lanes
    UNION ALL
    SELECT s.lane, (SELECT min(service_id) FROM messages
                    WHERE lane = s.lane AND next_at IS NOT NULL AND service_id > s.id)
    FROM s WHERE s.id IS NOT NULL
)
SELECT min((SELECT min(next_at) FROM messages WHERE lane = s.lane AND service_id = s.id AND next_at IS NOT NULL))
FROM s WHERE s.id IS NOT NULL;

-- record_status --
UPDATE messages
SET status = :status, code = :code, description = :description, updated_at = :at, next_at = :next_at,
    leased = 0, attempts = :attempts, ext_id = coalesce(:ext_id, ext_id), pending = :pending,
    lane = CASE WHEN :pending IS NULL THEN priority ELSE 0 END,
    last_error = :error
WHERE transid = :transid;

-- still_pending --
-- :keys, a JSON array of claimed transids whose pending outcome fell due: those whose outcome is still pending.
SELECT transid FROM messages WHERE transid IN (SELECT value FROM json_each(:keys)) AND pending IS NOT NULL;

-- reschedule --
UPDATE messages SET next_at = :next_at, leased = 0, attempts = :attempts, last_error = :error,
                    updated_at = :at
WHERE transid = :transid;

-- reroute --
-- After reschedule (same batch): the message goes by another channel (RCS to SMS fallback).
UPDATE messages SET channel = :channel, content = :content, parts = :parts WHERE transid = :transid;

-- insert_event --
INSERT INTO events (transid, status, code, description, at)
VALUES (:transid, :status, :code, :description, :at);

-- message_exists --
SELECT 1 FROM messages WHERE transid = :transid;

-- insert_notification --
INSERT INTO notifications (event_id, transid, service_id, url, body, gtrid, state, created_at, updated_at,
                           next_at)
VALUES (:event_id, :transid, :service_id, :url, :body, :gtrid,
        CASE WHEN EXISTS (SELECT 1 FROM notifications
                          WHERE transid = :transid AND state IN ('pending', 'waiting'))
             THEN 'waiting' ELSE 'pending' END,
        :at, :at, :at);

-- claim_notifications --
UPDATE notifications SET leased = 1, next_at = :lease_until
WHERE seq IN (SELECT seq FROM notifications WHERE state = 'pending' AND next_at <= :now
                AND (:busy = '[]' OR receiver_of(url) NOT IN (SELECT value FROM json_each(:busy)))
              ORDER BY next_at LIMIT :limit)
RETURNING seq, event_id, transid, service_id, url, body, attempts, gtrid;

-- finish_notification --
UPDATE notifications
SET state = :state, attempts = attempts + :counted, updated_at = :at, next_at = :next_at, leased = 0,
    http_status = :http_status, last_error = :error
WHERE seq = :seq;

-- promote_next_notification --
-- After a notification is sent or given up, the message's next one may go.
UPDATE notifications SET state = 'pending', next_at = :at, updated_at = :at
WHERE seq = (SELECT w.seq FROM notifications w
             WHERE w.transid = (SELECT transid FROM notifications WHERE seq = :seq) AND w.state = 'waiting'
             ORDER BY w.seq LIMIT 1);

-- release_leases --
UPDATE messages SET leased = 0, next_at = :now WHERE leased = 1;

-- release_notification_leases --
UPDATE notifications SET leased = 0, next_at = :now WHERE leased = 1 AND state = 'pending';

-- load_catalogue --
SELECT kind, name, body, origin FROM catalogue ORDER BY kind, name;

-- catalogue_revision --
SELECT revision FROM catalogue_revision WHERE id = 1;

-- bump_catalogue_revision --
UPDATE catalogue_revision SET revision = revision + 1 WHERE id = 1;

-- insert_catalogue --
INSERT INTO catalogue (kind, name, body, origin, updated_at) VALUES (:kind, :name, :body, :origin, :now)
ON CONFLICT (kind, name) DO NOTHING;

-- update_catalogue --
UPDATE catalogue SET body = :body, updated_at = :now WHERE kind = :kind AND name = :name;

-- delete_catalogue --
DELETE FROM catalogue WHERE kind = :kind AND name = :name;

-- seed_catalogue --
INSERT INTO catalogue (kind, name, body, origin, updated_at) VALUES (:kind, :name, :body, 'config', :now)
ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, origin = 'config', updated_at = excluded.updated_at;

-- catalogue_of_origin --
SELECT kind, name FROM catalogue WHERE origin = :origin;

-- get_message --
SELECT transid, service_id, channel, address, address_type, content, parts, correlationid, callback_data,
       notify_url, priority, expiry, status, code, description, created_at, updated_at, attempts, ext_id,
       receipts
FROM messages WHERE transid = :transid AND service_id = :service_id;

-- get_events --
SELECT status, code, description, at FROM events WHERE transid = :transid ORDER BY seq;

-- get_notifications --
SELECT event_id, url, state, attempts, http_status, last_error, created_at, updated_at
FROM notifications WHERE transid = :transid ORDER BY seq;

-- find_waiting --
-- What waits for a receipt under provider id :key, the most recently sent first: a Submitted message
-- (part NULL), or a part of one whose own receipt has not come. SMSCs reuse ids: a finished message with
-- the same id is never the answer.
SELECT transid, NULL AS part, updated_at, seq FROM messages WHERE ext_id = :key AND status = 'Submitted'
UNION ALL
SELECT p.transid, p.part, m.updated_at, m.seq FROM ext_parts AS p JOIN messages AS m ON m.transid = p.transid
WHERE p.ext_id = :key AND p.outcome IS NULL AND m.status = 'Submitted'
ORDER BY 3 DESC, 4 DESC
LIMIT 1;

-- stage_receipt --
-- The receipt becomes the message's pending outcome, due now: the dispatcher applies it and notifies.
-- A message already final keeps its status (a repeated receipt changes nothing).
UPDATE messages SET pending = :outcome, next_at = :at, lane = 0
WHERE transid = :transid AND status = 'Submitted';

-- receipt_target --
SELECT transid, service_id, channel, address, address_type, parts, correlationid, callback_data, notify_url,
       receipts, gtrid
FROM messages WHERE transid = :transid AND status = 'Submitted';

-- finish_by_receipt --
UPDATE messages
SET status = :status, code = :code, description = :description, updated_at = :at, next_at = NULL,
    leased = 0, pending = NULL, lane = priority
WHERE transid = :transid AND status = 'Submitted';

-- set_part_outcome --
UPDATE ext_parts SET outcome = :outcome WHERE transid = :transid AND part = :part;

-- part_outcomes --
SELECT outcome FROM ext_parts WHERE transid = :transid ORDER BY part;

-- insert_part --
-- A message sent again (its first send's outcome unknown) replaces its parts' ids.
INSERT OR REPLACE INTO ext_parts (ext_id, transid, part) VALUES (:key, :transid, :part);

-- insert_early_receipt --
INSERT INTO early_receipts (key, receipt_id, outcome, at) VALUES (:key, :receipt_id, :outcome, :at);

-- any_early_receipt --
SELECT 1 FROM early_receipts LIMIT 1;

-- take_early_receipt --
-- Every form of an early receipt's id is deleted together; each comes back with its key.
DELETE FROM early_receipts WHERE receipt_id IN (SELECT receipt_id FROM early_receipts WHERE key = :key)
RETURNING key, receipt_id, outcome, at;

-- forget_early_receipts --
DELETE FROM early_receipts WHERE at < :before;

-- get_idempotent --
SELECT response, created_at FROM idempotency WHERE service_id = :service_id AND key = :key;

-- put_idempotent --
INSERT OR REPLACE INTO idempotency (service_id, key, response, created_at)
VALUES (:service_id, :key, :response, :at);

-- forget_idempotent --
DELETE FROM idempotency WHERE created_at < :before;

-- insert_inbound --
INSERT OR IGNORE INTO inbound (tid, service_id, channel, source, destination, text, parts, received_at)
VALUES (:tid, :service_id, :channel, :source, :destination, :text, :parts, :at);

-- upsert_consent --
INSERT INTO consents (service_id, group_id, channel, address, consent, reason, source, expires, updated_at)
VALUES (:service_id, :group_id, :channel, :address, :consent, :reason, :source, :expires, :at)
ON CONFLICT (service_id, group_id, channel, address) DO UPDATE
SET consent = excluded.consent, reason = excluded.reason, source = excluded.source,
    expires = excluded.expires, updated_at = excluded.updated_at;

-- get_consent --
SELECT consent, reason, source, expires, updated_at FROM consents
WHERE service_id = :service_id AND group_id = :group_id AND channel = :channel AND address = :address;

-- delete_consent --
DELETE FROM consents
WHERE service_id = :service_id AND group_id = :group_id AND address = :address
  AND (:channel IS NULL OR channel = :channel);

-- count_policy_sends --
SELECT count(*) FROM policy_sends
WHERE service_id = :service_id AND group_id = :group_id AND channel = :channel AND address = :address
  AND sent_at > :since;

-- insert_policy_send --
INSERT INTO policy_sends (service_id, group_id, channel, address, sent_at)
VALUES (:service_id, :group_id, :channel, :address, :at);

-- clear_policy --
UPDATE messages SET policy = NULL WHERE transid = :transid;

-- forget_policy_sends --
DELETE FROM policy_sends WHERE sent_at < :before;

-- insert_link --
INSERT INTO links (code, service_id, transid, linkid, target, track, expires_at, created_at)
VALUES (:code, :service_id, :transid, :linkid, :target, :track, :expires_at, :at);

-- click_link --
UPDATE links SET clicks = clicks + 1, last_click_at = :at WHERE code = :code
RETURNING service_id, transid, linkid, expires_at, target, track;

-- find_link --
SELECT service_id, transid, linkid, expires_at, target, track FROM links WHERE code = :code;

-- message_clicks --
SELECT coalesce(sum(clicks), 0) FROM links WHERE transid = :transid;

-- advance_target --
-- A message whatever its status (advance decides whether it moves), with what its notification needs.
SELECT transid, service_id, channel, address, address_type, parts, correlationid, callback_data, notify_url,
       status, receipts, gtrid
FROM messages WHERE transid = :transid AND service_id = :service_id;

-- report_target --
-- A message by its transid alone, whatever its service and status (an email bounce report names only the
-- transid; the caller decides what changes).
SELECT transid, service_id, channel, address, address_type, parts, correlationid, callback_data, notify_url,
       status, receipts, gtrid
FROM messages WHERE transid = :transid;

-- advance_status --
-- Only ever to Delivered or Read, or a provider's late failure of a Submitted message (advance_by_ext):
-- a receipt still scheduled for the message is stale now, and is dropped.
UPDATE messages
SET status = :status, code = :code, description = :description, updated_at = :at, next_at = NULL,
    leased = 0, pending = NULL, lane = priority
WHERE transid = :transid;

-- remember_gone --
-- The address of a message whose failure said it is gone for good.
INSERT INTO gone_addresses (service_id, channel, address, code, description, at)
SELECT service_id, channel, address, :code, :description, :at FROM messages
WHERE transid = :transid AND service_id = :service_id
ON CONFLICT (service_id, channel, address) DO UPDATE
SET code = excluded.code, description = excluded.description, at = excluded.at;

-- last_inbound --
-- sources: a JSON array. Served by inbound_last (migration 0010).
SELECT source, max(received_at) FROM inbound
WHERE service_id = :service_id AND channel = :channel
  AND source IN (SELECT value FROM json_each(:sources))
GROUP BY source;

-- gone_addresses --
-- addresses: a JSON array.
SELECT service_id, channel, address, code, description, at FROM gone_addresses
WHERE service_id = :service_id AND channel = :channel
  AND address IN (SELECT value FROM json_each(:addresses));

-- list_gone --
SELECT service_id, channel, address, code, description, at FROM gone_addresses
WHERE :service_id IS NULL OR service_id = :service_id
ORDER BY at DESC, service_id, channel, address;

-- forget_gone --
DELETE FROM gone_addresses WHERE service_id = :service_id AND channel = :channel AND address = :address;

-- save_device --
-- A token already registered for the app and provider keeps its row, device_id and created_at.
INSERT INTO devices (device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh,
                     auth, created_at, updated_at)
VALUES (:device_id, :app_id, :service_id, :user_id, :customer_id, :platform, :provider, :token, :p256dh,
        :auth, :created_at, :updated_at)
ON CONFLICT (app_id, token, provider) DO UPDATE
SET user_id = excluded.user_id, customer_id = excluded.customer_id, platform = excluded.platform,
    p256dh = excluded.p256dh, auth = excluded.auth, updated_at = excluded.updated_at
RETURNING device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
          created_at, updated_at;

-- devices_of_app --
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = :app_id ORDER BY created_at, device_id;

-- devices_by_user_id --
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = :app_id AND user_id = :value ORDER BY created_at, device_id;

-- devices_by_customer_id --
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = :app_id AND customer_id = :value ORDER BY created_at, device_id;

-- devices_by_device_id --
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = :app_id AND device_id = :value ORDER BY created_at, device_id;

-- devices_by_token --
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = :app_id AND token = :value ORDER BY created_at, device_id;

-- devices_for_user_id --
-- values: a JSON array (in the three below too).
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = :app_id AND user_id IN (SELECT value FROM json_each(:values))
ORDER BY created_at, device_id;

-- devices_for_customer_id --
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = :app_id AND customer_id IN (SELECT value FROM json_each(:values))
ORDER BY created_at, device_id;

-- devices_for_device_id --
-- "+app_id": without it the planner may walk the app's whole devices index instead of the primary key.
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE +app_id = :app_id AND device_id IN (SELECT value FROM json_each(:values))
ORDER BY created_at, device_id;

-- devices_for_token --
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = :app_id AND token IN (SELECT value FROM json_each(:values))
ORDER BY created_at, device_id;

-- delete_devices --
-- device_ids: a JSON array.
DELETE FROM devices WHERE app_id = :app_id AND device_id IN (SELECT value FROM json_each(:device_ids));

-- ext_target --
-- The service's WhatsApp or Messenger message sent under provider id :key, whatever its status (the
-- caller decides whether it moves). The channel test is the partial index's own (messages_meta_ext_id):
-- SQLite uses that index only when the query repeats its condition.
SELECT transid, service_id, channel, address, address_type, parts, correlationid, callback_data, notify_url,
       status, receipts, gtrid
FROM messages
WHERE ext_id = :key AND channel IN ('whatsapp', 'fb') AND service_id = :service_id
ORDER BY seq DESC LIMIT 1;

-- watermark_targets --
-- A Messenger watermark's messages: the service's to one PSID created before it and sent, oldest first
-- (on the partial index messages_fb_address, whose condition the query repeats).
SELECT transid, service_id, channel, address, address_type, parts, correlationid, callback_data, notify_url,
       status, receipts, gtrid
FROM messages
WHERE channel = 'fb' AND service_id = :service_id AND address = :address AND created_at < :before
  AND status IN ('Submitted', 'Delivered')
ORDER BY created_at, seq;

-- queue_depth --
-- Messages waiting for work per lane, for /metrics: a count over the partial due index, so it costs as
-- much as the queue is deep, not as the table is large.
SELECT lane, count(*) FROM messages WHERE next_at IS NOT NULL GROUP BY lane

-- notification_backlog --
-- Notifications not yet sent (due, retrying, or behind an earlier one of their message) per URL, for
-- /metrics, over the partial index notifications_backlog.
SELECT url, count(*) FROM notifications WHERE state IN ('pending', 'waiting') GROUP BY url

-- keep_early_status --
-- A status for a provider id no message was recorded with yet (Store.advance_by_ext), kept for the send.
INSERT INTO early_statuses (ext_id, service_id, outcome, additional_info, at) VALUES (?, ?, ?, ?, ?);

-- take_early_statuses --
-- :keys, a JSON array of provider ids just recorded: the statuses kept for them, deleted and returned.
DELETE FROM early_statuses WHERE ext_id IN (SELECT value FROM json_each(:keys))
RETURNING seq, ext_id, service_id, outcome, additional_info, at;

-- forget_early_statuses --
DELETE FROM early_statuses WHERE at < :before;

-- insert_attempt --
-- transid, attempt, at, connector, kind, outcome, code, detail, request, answer: a message's try at its
-- provider that ended (accepted, failed, rerouted), always kept (Store.record).
INSERT INTO attempts (transid, attempt, at, connector, kind, outcome, code, detail, request, answer)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- insert_retry_attempt --
-- The same for a try to be retried, with `kept`: not kept beyond the message's first `kept` retries.
INSERT INTO attempts (transid, attempt, at, connector, kind, outcome, code, detail, request, answer)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
WHERE (SELECT count(*) FROM attempts WHERE transid = ?1 AND outcome = 'retry') < ?11;

-- attempts_of --
-- A message's provider attempts, oldest first, when it is the service's.
SELECT at, attempt, connector, kind, outcome, code, detail, request, answer FROM attempts
WHERE transid = :transid
  AND EXISTS (SELECT 1 FROM messages WHERE transid = :transid AND service_id = :service_id)
ORDER BY seq;

-- publish_report --
-- A process's report on one of its connectors (tidings/observe/cluster.py), stamped :now.
INSERT INTO connector_reports (process, connector, host, pid, role, started_at, published_at, body)
VALUES (:process, :connector, :host, :pid, :role, :started_at, :now, :body)
ON CONFLICT (process, connector) DO UPDATE SET published_at = excluded.published_at, body = excluded.body;

-- unpublish_other_connectors --
-- :connectors, a JSON array: the process's rows for connectors it no longer runs.
DELETE FROM connector_reports
WHERE process = :process AND connector NOT IN (SELECT value FROM json_each(:connectors));

-- forget_reports --
-- Rows of processes that stopped publishing (gone without a clean stop) long ago.
DELETE FROM connector_reports WHERE published_at < :before;

-- published_reports --
-- Every process's rows with their age at :now.
SELECT process, connector, host, pid, role, started_at, :now - published_at, body FROM connector_reports
ORDER BY process, connector;

-- unpublish_reports --
DELETE FROM connector_reports WHERE process = :process;

-- unpublish_every_report --
-- At open: one process owns the file, so rows left by another are from one that ended without a clean stop.
DELETE FROM connector_reports;

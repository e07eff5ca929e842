-- Named queries for the PostgreSQL store. Parameters are positional ($1 ...); the comment under each
-- name lists them in order.

-- insert_message --
-- transid, service_id, channel, address, address_type, content, parts, correlationid, callback_data,
-- notify_url, priority, expiry, created_at, policy, next_at (the first due time), receipts, gtrid
INSERT INTO messages (transid, service_id, channel, address, address_type, content, parts, correlationid,
                      callback_data, notify_url, priority, lane, expiry, created_at, updated_at, next_at,
                      policy, receipts, gtrid, status, code, description)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $13, $15, $14, $16, $17, 'Queued',
        '1001', 'Queued');

-- due_services --
-- lane, now. The services with due work in a lane: a skip scan over the (lane, service_id, next_at)
-- index, one seek per service, however many rows each one has waiting.
WITH RECURSIVE s(id) AS (
    SELECT min(service_id) FROM messages WHERE lane = $1 AND next_at IS NOT NULL
    UNION ALL
    SELECT (SELECT min(service_id) FROM messages
            WHERE lane = $1 AND next_at IS NOT NULL AND service_id > s.id)
    FROM s WHERE s.id IS NOT NULL
)
SELECT id FROM s
WHERE id IS NOT NULL
  AND (SELECT min(next_at) FROM messages
       WHERE lane = $1 AND service_id = s.id AND next_at IS NOT NULL) <= $2;

-- claim_service --
-- lane, service_id, now, lease_until, limit, process. Rows another worker is claiming right now are skipped,
-- not waited for.
UPDATE messages SET leased = true, leased_by = $6, next_at = $4
WHERE seq IN (SELECT seq FROM messages
              WHERE lane = $1 AND service_id = $2 AND next_at <= $3
              ORDER BY next_at LIMIT $5 FOR UPDATE SKIP LOCKED)
RETURNING seq, transid, service_id, channel, address, address_type, content, parts, correlationid,
          callback_data, notify_url, priority, expiry, status, attempts, ext_id, pending, policy, receipts,
          gtrid;

-- next_due --
SELECT min(next_at) FROM messages WHERE next_at IS NOT NULL;

-- record_status --
-- transid, status, code, description, at, next_at, attempts, ext_id, pending, error
UPDATE messages
SET status = $2, code = $3, description = $4, updated_at = $5, next_at = $6, leased = false,
    attempts = $7, ext_id = coalesce($8, ext_id), pending = $9,
    lane = CASE WHEN $9::text IS NULL THEN priority ELSE 0 END, last_error = $10
WHERE transid = $1;

-- still_pending --
-- claimed transids whose pending outcome fell due, sorted: those still pending, locked against advance.
SELECT transid FROM messages WHERE transid = ANY($1::text[]) AND pending IS NOT NULL
ORDER BY transid FOR UPDATE;

-- reschedule --
-- transid, next_at, attempts, error, at
UPDATE messages SET next_at = $2, leased = false, attempts = $3, last_error = $4, updated_at = $5
WHERE transid = $1;

-- reroute --
-- transid, channel, content, parts. After reschedule (same batch): the message goes by another channel
-- (RCS to SMS fallback).
UPDATE messages SET channel = $2, content = $3, parts = $4 WHERE transid = $1;

-- insert_event --
-- transid, status, code, description, at
INSERT INTO events (transid, status, code, description, at) VALUES ($1, $2, $3, $4, $5);

-- insert_notification --
-- event_id, transid, service_id, url, body, at, gtrid. The caller holds the message's lock (lock_messages).
-- "Not sent nor failed" rather than "pending or waiting": the latter is the predicate of the partial index
-- notifications_backlog, which a planner without fresh statistics then ANDs with the transid index and
-- reads whole (10,000 entries for one message's 2 rows: 0.19 ms against 0.015 ms a notification).
INSERT INTO notifications (event_id, transid, service_id, url, body, gtrid, state, created_at, updated_at,
                           next_at)
VALUES ($1, $2, $3, $4, $5, $7,
        CASE WHEN EXISTS (SELECT 1 FROM notifications
                          WHERE transid = $2 AND state NOT IN ('sent', 'failed'))
             THEN 'waiting' ELSE 'pending' END,
        $6, $6, $6);

-- lock_keys --
-- keys. Serialises the transactions that touch the same messages, provider ids or policy counters, in
-- one order so that two of them cannot deadlock; released at commit.
SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM (SELECT DISTINCT unnest($1::text[]) AS k ORDER BY 1) AS keys;

-- lock_message --
-- transid
SELECT 1 FROM messages WHERE transid = $1 FOR UPDATE;

-- lock_messages --
-- transids, sorted
SELECT count(*) FROM (SELECT 1 FROM messages WHERE transid = ANY($1::text[]) ORDER BY transid FOR UPDATE) AS locked;

-- claim_notifications --
-- now, lease_until, limit, process, busy receivers (tidings.store.base.receiver_of, here in SQL)
UPDATE notifications SET leased = true, leased_by = $4, next_at = $2
WHERE seq IN (SELECT seq FROM notifications WHERE state = 'pending' AND next_at <= $1
                AND (cardinality($5::text[]) = 0
                     OR lower(regexp_replace(url, '^([^:/?#]+)://(?:[^/?#@]*@)?([^/?#]*).*$', '\1://\2'))
                        <> ALL($5::text[]))
              ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
RETURNING seq, event_id, transid, service_id, url, body, attempts, gtrid;

-- transids_of_notifications --
-- seqs
SELECT transid FROM notifications WHERE seq = ANY($1::bigint[]);

-- finish_notification --
-- seq, state, at, next_at, http_status, error, counted
UPDATE notifications
SET state = $2, attempts = attempts + $7, updated_at = $3, next_at = $4, leased = false,
    http_status = $5, last_error = $6
WHERE seq = $1;

-- promote_next_notification --
-- seq, at. After a notification is sent or given up, the message's next one may go.
UPDATE notifications SET state = 'pending', next_at = $2, updated_at = $2
WHERE seq = (SELECT w.seq FROM notifications w
             WHERE w.transid = (SELECT transid FROM notifications WHERE seq = $1) AND w.state = 'waiting'
             ORDER BY w.seq LIMIT 1);

-- load_catalogue --
SELECT kind, name, body, origin FROM catalogue ORDER BY kind, name;

-- catalogue_revision --
SELECT revision FROM catalogue_revision WHERE id = 1;

-- bump_catalogue_revision --
UPDATE catalogue_revision SET revision = revision + 1 WHERE id = 1;

-- insert_catalogue --
-- kind, name, body, origin, now
INSERT INTO catalogue (kind, name, body, origin, updated_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (kind, name) DO NOTHING;

-- update_catalogue --
-- kind, name, body, now
UPDATE catalogue SET body = $3, updated_at = $4 WHERE kind = $1 AND name = $2;

-- delete_catalogue --
-- kind, name
DELETE FROM catalogue WHERE kind = $1 AND name = $2;

-- seed_catalogue --
-- kind, name, body, now
INSERT INTO catalogue (kind, name, body, origin, updated_at) VALUES ($1, $2, $3, 'config', $4)
ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, origin = 'config', updated_at = excluded.updated_at;

-- catalogue_of_origin --
-- origin
SELECT kind, name FROM catalogue WHERE origin = $1;

-- get_message --
-- transid, service_id
SELECT transid, service_id, channel, address, address_type, content, parts, correlationid, callback_data,
       notify_url, priority, expiry, status, code, description, created_at, updated_at, attempts, ext_id,
       receipts
FROM messages WHERE transid = $1 AND service_id = $2;

-- get_events --
SELECT status, code, description, at FROM events WHERE transid = $1 ORDER BY seq;

-- get_notifications --
SELECT event_id, url, state, attempts, http_status, last_error, created_at, updated_at
FROM notifications WHERE transid = $1 ORDER BY seq;

-- message_clicks --
SELECT coalesce(sum(clicks), 0) FROM links WHERE transid = $1;

-- stage_receipt --
-- transid, outcome, at. The receipt becomes the message's pending outcome, due now, for the dispatcher.
UPDATE messages SET pending = $2, next_at = $3, lane = 0 WHERE transid = $1 AND status = 'Submitted';

-- receipt_targets --
-- transids, sorted (rows are locked in that order)
SELECT transid, service_id, channel, address, address_type, parts, correlationid, callback_data, notify_url,
       receipts, gtrid
FROM messages WHERE transid = ANY($1::text[]) AND status = 'Submitted' ORDER BY transid FOR UPDATE;

-- waiting_for_receipts --
-- keys. Per provider id, what waits for a receipt under it, the most recently sent first: a Submitted
-- message (part NULL), or a part of one whose own receipt has not come. SMSCs reuse ids: a finished
-- message with the same id is never among them.
SELECT ext_id, transid, NULL::integer AS part, updated_at, seq FROM messages
WHERE ext_id = ANY($1::text[]) AND ext_id IS NOT NULL AND status = 'Submitted'
UNION ALL
SELECT p.ext_id, p.transid, p.part, m.updated_at, m.seq FROM ext_parts AS p JOIN messages AS m USING (transid)
WHERE p.ext_id = ANY($1::text[]) AND p.outcome IS NULL AND m.status = 'Submitted'
ORDER BY 1, 4 DESC, 5 DESC;

-- finish_by_receipt --
-- transid, status, code, description, at
UPDATE messages
SET status = $2, code = $3, description = $4, updated_at = $5, next_at = NULL, leased = false,
    pending = NULL, lane = priority
WHERE transid = $1 AND status = 'Submitted';

-- set_part_outcome --
-- transid, part, outcome
UPDATE ext_parts SET outcome = $3 WHERE transid = $1 AND part = $2;

-- part_outcomes --
SELECT outcome FROM ext_parts WHERE transid = $1 ORDER BY part;

-- insert_part --
-- key, transid, part. A message sent again (its first send's outcome unknown) replaces its parts' ids.
INSERT INTO ext_parts (ext_id, transid, part) VALUES ($1, $2, $3)
ON CONFLICT (transid, part) DO UPDATE SET ext_id = excluded.ext_id, outcome = NULL;

-- insert_early_receipt --
-- key, receipt_id, outcome, at
INSERT INTO early_receipts (key, receipt_id, outcome, at) VALUES ($1, $2, $3, $4);

-- take_early_receipts --
-- keys. Every form of an early receipt's id is deleted together; each comes back with its key.
DELETE FROM early_receipts
WHERE receipt_id IN (SELECT receipt_id FROM early_receipts WHERE key = ANY($1::text[]))
RETURNING key, receipt_id, outcome, at;

-- forget_early_receipts --
DELETE FROM early_receipts WHERE at < $1;

-- claim_idempotent --
-- service_id, key, response, at, fresh_after. Inserts the key, or takes over one older than its 24 h;
-- returns nothing when a fresh one exists (a concurrent first request's commit is waited for).
INSERT INTO idempotency (service_id, key, response, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (service_id, key) DO UPDATE SET response = excluded.response, created_at = excluded.created_at
WHERE idempotency.created_at <= $5
RETURNING 1;

-- get_idempotent --
SELECT response FROM idempotency WHERE service_id = $1 AND key = $2;

-- get_fresh_idempotent --
-- service_id, key, fresh_after
SELECT response FROM idempotency WHERE service_id = $1 AND key = $2 AND created_at > $3;

-- forget_idempotent --
DELETE FROM idempotency WHERE created_at < $1;

-- insert_inbound --
-- tid, service_id, channel, source, destination, text, parts, at
INSERT INTO inbound (tid, service_id, channel, source, destination, text, parts, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tid) DO NOTHING;

-- upsert_consent --
-- service_id, group_id, channel, address, consent, reason, source, expires, at
INSERT INTO consents (service_id, group_id, channel, address, consent, reason, source, expires, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (service_id, group_id, channel, address) DO UPDATE
SET consent = excluded.consent, reason = excluded.reason, source = excluded.source,
    expires = excluded.expires, updated_at = excluded.updated_at;

-- get_consent --
-- service_id, group_id, channel, address
SELECT consent, reason, source, expires, updated_at FROM consents
WHERE service_id = $1 AND group_id = $2 AND channel = $3 AND address = $4;

-- delete_consent --
-- service_id, group_id, address, channel (NULL: every channel)
DELETE FROM consents
WHERE service_id = $1 AND group_id = $2 AND address = $3 AND ($4::text IS NULL OR channel = $4);

-- count_policy_sends --
-- service_id, group_id, channel, address, since
SELECT count(*) FROM policy_sends
WHERE service_id = $1 AND group_id = $2 AND channel = $3 AND address = $4 AND sent_at > $5;

-- insert_policy_send --
-- service_id, group_id, channel, address, at
INSERT INTO policy_sends (service_id, group_id, channel, address, sent_at) VALUES ($1, $2, $3, $4, $5);

-- clear_policy --
UPDATE messages SET policy = NULL WHERE transid = $1;

-- forget_policy_sends --
DELETE FROM policy_sends WHERE sent_at < $1;

-- insert_link --
-- code, service_id, transid, linkid, target, track, expires_at, at
INSERT INTO links (code, service_id, transid, linkid, target, track, expires_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- click_link --
-- code, at
UPDATE links SET clicks = clicks + 1, last_click_at = $2 WHERE code = $1
RETURNING service_id, transid, linkid, expires_at, target, track;

-- find_link --
-- code
SELECT service_id, transid, linkid, expires_at, target, track FROM links WHERE code = $1;

-- heartbeat --
-- process. Returns the database's clock.
INSERT INTO processes (id, started_at, seen_at)
VALUES ($1, extract(epoch FROM clock_timestamp()), extract(epoch FROM clock_timestamp()))
ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
RETURNING seen_at;

-- forget_dead_processes --
-- silent_for. Processes whose heartbeat stopped: their leases are handed out again at once.
DELETE FROM processes WHERE seen_at < extract(epoch FROM clock_timestamp()) - $1 RETURNING id;

-- release_messages_of --
-- processes, now
UPDATE messages SET leased = false, next_at = $2 WHERE leased AND leased_by = ANY($1::text[]);

-- release_notifications_of --
-- processes, now
UPDATE notifications SET leased = false, next_at = $2
WHERE leased AND state = 'pending' AND leased_by = ANY($1::text[]);

-- forget_process --
DELETE FROM processes WHERE id = $1;

-- backend_waits --
-- application_name. This process's busy sessions as PostgreSQL sees them, the longest transaction first:
-- what each waits on, and the sessions that hold it up (pid, who, state, query).
SELECT a.pid, a.state, a.wait_event_type, a.wait_event,
       extract(epoch FROM now() - a.xact_start)::float8, extract(epoch FROM now() - a.query_start)::float8,
       left(btrim(regexp_replace(regexp_replace(a.query, '--[^\n]*', '', 'g'), '\s+', ' ', 'g')), 160),
       (SELECT coalesce(array_agg(b.pid || ' (' || coalesce(nullif(b.application_name, ''), b.usename::text)
                                  || ', ' || coalesce(b.state, '?') || ': '
                                  || left(btrim(regexp_replace(regexp_replace(b.query, '--[^\n]*', '', 'g'),
                                                               '\s+', ' ', 'g')), 80)
                                  || ')'), '{}')
        FROM pg_stat_activity AS b WHERE b.pid = ANY (pg_blocking_pids(a.pid)))
FROM pg_stat_activity AS a
WHERE a.application_name = $1 AND a.state <> 'idle' AND a.pid <> pg_backend_pid()
ORDER BY a.xact_start NULLS LAST;

-- advance_targets --
-- transids, sorted (rows are locked in that order). Messages whatever their status (advance decides
-- whether each moves), with what a notification needs.
SELECT transid, service_id, channel, address, address_type, parts, correlationid, callback_data, notify_url,
       status, receipts, gtrid
FROM messages WHERE transid = ANY($1::text[]) ORDER BY transid FOR UPDATE;

-- report_target --
-- transid. A message by its transid alone, whatever its service and status (an email bounce report names
-- only the transid; the caller decides what changes), locked when read in a transaction.
SELECT transid, service_id, channel, address, address_type, parts, correlationid, callback_data, notify_url,
       status, receipts, gtrid
FROM messages WHERE transid = $1 FOR UPDATE;

-- advance_status --
-- transid, status, code, description, at. Only ever to Delivered or Read, or a provider's late failure
-- of a Submitted message (advance_by_ext): a receipt still scheduled for the message is stale now, and
-- is dropped.
UPDATE messages
SET status = $2, code = $3, description = $4, updated_at = $5, next_at = NULL, leased = false,
    pending = NULL, lane = priority
WHERE transid = $1;

-- remember_gone --
-- transid, service_id, code, description, at. The address of a message whose failure said it is gone
-- for good.
INSERT INTO gone_addresses (service_id, channel, address, code, description, at)
SELECT service_id, channel, address, $3, $4, $5 FROM messages WHERE transid = $1 AND service_id = $2
ON CONFLICT (service_id, channel, address) DO UPDATE
SET code = excluded.code, description = excluded.description, at = excluded.at;

-- last_inbound --
-- service_id, channel, sources. Served by inbound_last (migration 0006).
SELECT source, max(received_at) FROM inbound
WHERE service_id = $1 AND channel = $2 AND source = ANY($3::text[])
GROUP BY source;

-- gone_addresses --
-- service_id, channel, addresses
SELECT service_id, channel, address, code, description, at FROM gone_addresses
WHERE service_id = $1 AND channel = $2 AND address = ANY($3::text[]);

-- list_gone --
-- service_id (NULL: every service)
SELECT service_id, channel, address, code, description, at FROM gone_addresses
WHERE $1::text IS NULL OR service_id = $1
ORDER BY at DESC, service_id, channel, address;

-- forget_gone --
-- service_id, channel, address
DELETE FROM gone_addresses WHERE service_id = $1 AND channel = $2 AND address = $3;

-- save_device --
-- device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth, created_at,
-- updated_at. A token already registered for the app and provider keeps its row, device_id and created_at.
INSERT INTO devices (device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh,
                     auth, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (app_id, token, provider) DO UPDATE
SET user_id = excluded.user_id, customer_id = excluded.customer_id, platform = excluded.platform,
    p256dh = excluded.p256dh, auth = excluded.auth, updated_at = excluded.updated_at
RETURNING device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
          created_at, updated_at;

-- devices_of_app --
-- app_id
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = $1 ORDER BY created_at, device_id;

-- devices_by_user_id --
-- app_id, user_id
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = $1 AND user_id = $2 ORDER BY created_at, device_id;

-- devices_by_customer_id --
-- app_id, customer_id
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = $1 AND customer_id = $2 ORDER BY created_at, device_id;

-- devices_by_device_id --
-- app_id, device_id
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = $1 AND device_id = $2 ORDER BY created_at, device_id;

-- devices_by_token --
-- app_id, token
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = $1 AND token = $2 ORDER BY created_at, device_id;

-- devices_for_user_id --
-- app_id, user_ids
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = $1 AND user_id = ANY($2::text[]) ORDER BY created_at, device_id;

-- devices_for_customer_id --
-- app_id, customer_ids
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = $1 AND customer_id = ANY($2::text[]) ORDER BY created_at, device_id;

-- devices_for_device_id --
-- app_id, device_ids
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = $1 AND device_id = ANY($2::text[]) ORDER BY created_at, device_id;

-- devices_for_token --
-- app_id, tokens
SELECT device_id, app_id, service_id, user_id, customer_id, platform, provider, token, p256dh, auth,
       created_at, updated_at
FROM devices WHERE app_id = $1 AND token = ANY($2::text[]) ORDER BY created_at, device_id;

-- delete_devices --
-- app_id, device_ids
DELETE FROM devices WHERE app_id = $1 AND device_id = ANY($2::text[]);

-- ext_target --
-- key, service_id. The service's WhatsApp or Messenger message sent under that provider id, whatever its
-- status (the caller decides whether it moves), locked. The channel test is the partial index's own
-- (messages_meta_ext_id).
SELECT transid, service_id, channel, address, address_type, parts, correlationid, callback_data, notify_url,
       status, receipts, gtrid
FROM messages
WHERE ext_id = $1 AND channel IN ('whatsapp', 'fb') AND service_id = $2
ORDER BY seq DESC LIMIT 1
FOR UPDATE;

-- watermark_targets --
-- service_id, address, before. A Messenger watermark's messages: the service's to one PSID created before
-- it and sent, oldest first, locked (on the partial index messages_fb_address).
SELECT transid, service_id, channel, address, address_type, parts, correlationid, callback_data, notify_url,
       status, receipts, gtrid
FROM messages
WHERE channel = 'fb' AND service_id = $1 AND address = $2 AND created_at < $3
  AND status IN ('Submitted', 'Delivered')
ORDER BY created_at, seq
FOR UPDATE;

-- queue_depth --
-- Messages waiting for work per lane, for /metrics: a count over the partial due index, so it costs as
-- much as the queue is deep, not as the table is large.
SELECT lane, count(*) FROM messages WHERE next_at IS NOT NULL GROUP BY lane

-- notification_backlog --
-- Notifications not yet sent (due, retrying, or behind an earlier one of their message) per URL, for
-- /metrics, over the partial index notifications_backlog.
SELECT url, count(*) FROM notifications WHERE state IN ('pending', 'waiting') GROUP BY url

-- keep_early_status --
-- ext_id, service_id, outcome, additional_info, at. A status for a provider id no message was recorded
-- with yet (Store.advance_by_ext), kept for the send; the caller holds lock_keys x:<ext_id>.
INSERT INTO early_statuses (ext_id, service_id, outcome, additional_info, at) VALUES ($1, $2, $3, $4, $5);

-- take_early_statuses --
-- ext_ids just recorded (the caller holds lock_keys x:<ext_id>): their kept statuses, deleted and returned.
DELETE FROM early_statuses WHERE ext_id = ANY($1::text[])
RETURNING seq, ext_id, service_id, outcome, additional_info, at;

-- forget_early_statuses --
-- before
DELETE FROM early_statuses WHERE at < $1;

-- insert_attempt --
-- transid, attempt, at, connector, kind, outcome, code, detail, request, answer: a message's try at its
-- provider that ended (accepted, failed, rerouted), always kept (Store.record).
INSERT INTO attempts (transid, attempt, at, connector, kind, outcome, code, detail, request, answer)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10);

-- insert_retry_attempt --
-- The same for a try to be retried, with `kept`: not kept beyond the message's first `kept` retries.
INSERT INTO attempts (transid, attempt, at, connector, kind, outcome, code, detail, request, answer)
SELECT $1::text, $2::integer, $3::double precision, $4::text, $5::text, $6::text, $7::text, $8::text,
       $9::text, $10::text
WHERE (SELECT count(*) FROM attempts WHERE transid = $1::text AND outcome = 'retry') < $11::bigint;

-- attempts_of --
-- A message's provider attempts, oldest first, when it is the service's.
SELECT at, attempt, connector, kind, outcome, code, detail, request, answer FROM attempts
WHERE transid = $1 AND EXISTS (SELECT 1 FROM messages WHERE transid = $1 AND service_id = $2)
ORDER BY seq;

-- publish_report --
-- process, connector, host, pid, role, started_at, body: a process's report on one of its connectors
-- (tidings/observe/cluster.py), stamped with the database's clock.
INSERT INTO connector_reports (process, connector, host, pid, role, started_at, published_at, body)
VALUES ($1, $2, $3, $4, $5, $6, extract(epoch FROM clock_timestamp()), $7)
ON CONFLICT (process, connector) DO UPDATE SET published_at = excluded.published_at, body = excluded.body;

-- unpublish_other_connectors --
-- process, connectors: the process's rows for connectors it no longer runs.
DELETE FROM connector_reports WHERE process = $1 AND connector <> ALL($2::text[]);

-- forget_reports --
-- older_than (seconds): rows of processes that stopped publishing (gone without a clean stop) long ago.
DELETE FROM connector_reports WHERE published_at < extract(epoch FROM clock_timestamp()) - $1;

-- published_reports --
-- Every process's rows with their age by the database's clock.
SELECT process, connector, host, pid, role, started_at,
       extract(epoch FROM clock_timestamp()) - published_at, body
FROM connector_reports ORDER BY process, connector;

-- unpublish_reports --
DELETE FROM connector_reports WHERE process = $1;

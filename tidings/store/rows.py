"""What both stores make of their rows, whatever the database: records built from a row's columns,
outcomes as JSON text, the rule that settles a message sent in parts, and how long things are kept."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from tidings.ids import new_id
from tidings.statuses import PROGRESS, Outcome, Status
from tidings.store.base import (
    Device,
    DueMessage,
    ExtAdvance,
    GoneAddress,
    HistoryEntry,
    IncomingReceipt,
    MessageRecord,
    NotificationRecord,
    ProviderAttempt,
    ReceiptTarget,
    Update,
)

IDEMPOTENCY_S = 24 * 3600
POLICY_SENDS_KEPT_S = 31 * 24 * 3600  # longer than the longest cap window
EARLY_RECEIPTS_KEPT_S = 7 * 24 * 3600  # a receipt whose submit never got recorded (a crash) is dropped
# An early receipt is taken by a send recorded at most this long after it came: the dispatcher records a
# send within its 30 s safety net (plus a few retries). An older one names an earlier message that reused
# the id (a receipt repeated after its message was final), not this one.
EARLY_RECEIPT_WINDOW_S = 300.0
# What outlives its use, by table: the query that forgets it (both backends' queries.sql) and how long it
# is kept. Forgotten when a store opens and by every purge pass (tidings.retention).
EXPIRING = (
    ("early_receipts", "forget_early_receipts", EARLY_RECEIPTS_KEPT_S),
    ("early_statuses", "forget_early_statuses", EARLY_RECEIPT_WINDOW_S),
    ("idempotency", "forget_idempotent", IDEMPOTENCY_S),
    ("policy_sends", "forget_policy_sends", POLICY_SENDS_KEPT_S),
)
# The provider ids whose statuses come by `Store.advance_by_ext` (WhatsApp wamids, Messenger mids): only a
# send recorded under one of these looks for statuses kept before it (`early_statuses`).
EXT_STATUS_PREFIXES = ("wa:", "fb:")
LANES = (0, 1, 2, 3)  # 0: receipts and due outcomes of sent messages; 1-3: the message priority
# Retries a message keeps in `attempts` (one throttled for days would add a row every few seconds); a
# try that ends otherwise (accepted, failed, rerouted) is always kept.
ATTEMPTS_KEPT = 50


def due_message(r: Any) -> DueMessage:
    """A claimed row: seq, transid, service_id, channel, address, address_type, content, parts,
    correlationid, callback_data, notify_url, priority, expiry, status, attempts, ext_id, pending, policy,
    receipts, gtrid."""
    return DueMessage(
        transid=r[1],
        service_id=r[2],
        channel=r[3],
        address=r[4],
        address_type=r[5],
        content=r[6].encode() if isinstance(r[6], str) else bytes(r[6]),
        parts=r[7],
        correlationid=r[8],
        callback_data=r[9],
        notify_url=r[10],
        priority=r[11],
        expiry=r[12],
        status=Status.from_word(r[13]),
        attempts=r[14],
        ext_id=r[15],
        pending=decode_outcome(r[16]),
        policy=msgspec.json.decode(r[17]) if r[17] is not None else None,
        receipts=r[18],
        gtrid=r[19],
    )


def message_record(r: Any, events: Sequence[Any], notes: Sequence[Any], clicks: int) -> MessageRecord:
    """A `get_message` row with its history, its notifications and its links' clicks."""
    return MessageRecord(
        transid=r[0],
        service_id=r[1],
        channel=r[2],
        address=r[3],
        address_type=r[4],
        content=msgspec.json.decode(r[5]),
        parts=r[6],
        correlationid=r[7],
        callback_data=r[8],
        notify_url=r[9],
        priority=r[10],
        expiry=r[11],
        status=r[12],
        code=r[13],
        description=r[14],
        created_at=r[15],
        updated_at=r[16],
        attempts=r[17],
        history=[HistoryEntry(*e) for e in events],
        notifications=[NotificationRecord(*n) for n in notes],
        clicks=int(clicks),
        receipts=r[19],
    )


def receipt_target(r: Any) -> ReceiptTarget:
    """A row of the queries that find a message to move on (advance, ext and watermark targets):
    transid, service_id, channel, address, address_type, parts, correlationid, callback_data,
    notify_url, status, receipts, gtrid."""
    return ReceiptTarget(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[10], r[11])


def moves_forward(current: Status, new: Status) -> bool:
    """Whether `Store.advance` takes a message from `current` to `new`: forward only, and only once it
    was sent (a Queued message has not reached anyone yet); a failure, an expiry or any status outside
    the forward order stays as it is."""
    was, will = PROGRESS.get(current), PROGRESS.get(new)
    return was is not None and will is not None and 0 < was < will


def ext_moves(current: Status, new: Status) -> bool:
    """Whether `Store.advance_by_ext` takes a message from `current` to `new`: forward as `moves_forward`,
    or from Submitted to a failure (Failed, Un-Delivered, Expired) the provider reports; never out of
    Delivered or Read into a failure."""
    if moves_forward(current, new):
        return True
    return current is Status.SUBMITTED and new.final and new not in PROGRESS


# find_devices' and devices_for's keys, each with its own named query: a key is never put into SQL text.
DEVICE_KEYS = ("user_id", "customer_id", "device_id", "token")


def device_query(key: str, kind: str = "by") -> str:
    """The name of the query that finds an app's devices by `key`: `devices_by_<key>` for one value,
    `devices_for_<key>` (kind "for") for many."""
    if key not in DEVICE_KEYS:
        raise ValueError(f"devices are found by one of {', '.join(DEVICE_KEYS)}, not {key!r}")
    return f"devices_{kind}_{key}"


def devices_by_value(key: str, rows: Iterable[Any]) -> dict[str, list[Device]]:
    """Device rows (in the query's order) grouped by their `key` field's value."""
    found: dict[str, list[Device]] = {}
    for r in rows:
        d = device_record(r)
        found.setdefault(getattr(d, key), []).append(d)
    return found


def new_device(d: Device, now: float) -> Device:
    """What `save_device` inserts: a new device_id unless the caller chose one, and `now` for the times
    the caller left at 0."""
    updated = d.updated_at or now
    return replace(
        d, device_id=d.device_id or new_id(), updated_at=updated, created_at=d.created_at or updated
    )


def device_record(r: Any) -> Device:
    """A devices row: device_id, app_id, service_id, user_id, customer_id, platform, provider, token,
    p256dh, auth, created_at, updated_at."""
    return Device(*r)


def gone_record(r: Any) -> GoneAddress:
    """A gone_addresses row: service_id, channel, address, code, description, at."""
    return GoneAddress(*r)


def settled(parts: Sequence[Outcome | None]) -> Outcome | None:
    """The outcome of a message sent in parts, from its parts' (None: no receipt yet): Delivered once every
    part is; otherwise the first part that failed decides; None while that cannot be told yet."""
    failed = next((o for o in parts if o is not None and o.status is not Status.DELIVERED), None)
    if failed is not None:
        return failed
    return parts[-1] if parts and all(o is not None for o in parts) else None


def decode_outcome(text: str | None) -> Outcome | None:
    if text is None:
        return None
    status, code, description = msgspec.json.decode(text)
    return Outcome(Status.from_word(status), code, description)


def encode_outcome(o: Outcome | None) -> str | None:
    return None if o is None else msgspec.json.encode([o.status.word, o.code, o.description]).decode()


@dataclass(frozen=True, slots=True)
class Waiting:
    """What waits for a receipt under a provider id: a message sent in one piece (`part` None), or one
    part of a message sent in several."""

    transid: str
    part: int | None = None


def match_receipts(
    receipts: Sequence[IncomingReceipt], waiting: Mapping[str, Sequence[Waiting]]
) -> list[Waiting | None]:
    """What each receipt applies to, in order. `waiting` lists, per provider id, what still waits under
    it, the most recently sent first (SMSCs reuse ids: finished messages are never candidates). A receipt
    takes, under its first key that has one, the first candidate no earlier receipt of the batch took;
    None: nothing waits for it (yet)."""
    taken: set[Waiting] = set()
    found: list[Waiting | None] = []
    for r in receipts:
        target = None
        for key in r.keys:
            target = next((w for w in waiting.get(key, ()) if w not in taken), None)
            if target is not None:
                taken.add(target)
                break
        found.append(target)
    return found


def sent_ids(updates: Iterable[Update]) -> dict[str, tuple[Waiting, float]]:
    """The provider ids a record of sends gives out, each with what now waits under it and when."""
    ids: dict[str, tuple[Waiting, float]] = {}
    for u in updates:
        if u.part_ids:
            for n, key in enumerate(u.part_ids, start=1):
                ids[key] = (Waiting(u.transid, n), u.at)
        elif u.ext_id:
            ids[u.ext_id] = (Waiting(u.transid), u.at)
    return ids


def early_matches(
    sent: Mapping[str, tuple[Waiting, float]], early: Iterable[Any]
) -> list[tuple[Waiting, Outcome, float]]:
    """The early receipts (rows of key, receipt_id, outcome, at) that belong to the sends just recorded:
    one per receipt, by its exact id when that matches, and only one that came within
    EARLY_RECEIPT_WINDOW_S before its send was recorded."""
    chosen: dict[str, tuple[Waiting, Outcome, float]] = {}
    for key, receipt_id, text, at in early:
        if (found := sent.get(key)) is None or (receipt_id in chosen and key != receipt_id):
            continue
        target, sent_at = found
        if at >= sent_at - EARLY_RECEIPT_WINDOW_S and (outcome := decode_outcome(text)) is not None:
            chosen[receipt_id] = (target, outcome, at)
    return list(chosen.values())


def status_sends(updates: Iterable[Update]) -> dict[str, tuple[str, float]]:
    """The sends just recorded under a provider id that statuses name (EXT_STATUS_PREFIXES): id ->
    (service, when recorded)."""
    return {
        u.ext_id: (u.service_id, u.at)
        for u in updates
        if u.ext_id is not None and u.outcome is not None and u.ext_id.startswith(EXT_STATUS_PREFIXES)
    }


def early_changes(sends: Mapping[str, tuple[str, float]], rows: Iterable[Any]) -> list[ExtAdvance]:
    """The kept early statuses (rows of seq, ext_id, service_id, outcome, additional_info, at) that belong
    to the sends just recorded, in the order they came: of the send's service, and at most
    EARLY_RECEIPT_WINDOW_S older than the send (an older one names an earlier message under a reused id).
    Each is applied at the send's time, so a message's history never goes back in time."""
    changes: list[ExtAdvance] = []
    for _seq, key, service_id, text, info, at in sorted(rows, key=lambda r: int(r[0])):
        found = sends.get(key)
        if found is None or found[0] != service_id or at < found[1] - EARLY_RECEIPT_WINDOW_S:
            continue
        if (outcome := decode_outcome(text)) is not None:
            changes.append(ExtAdvance(service_id, key, outcome, max(at, found[1]), info))
    return changes


def early_rows(changes: Iterable[ExtAdvance]) -> list[tuple[str, str, str, str, float]]:
    """What `early_statuses` keeps of statuses no send was recorded for yet: ext_id, service_id,
    outcome, additional_info, at."""
    return [
        (a.ext_id, a.service_id, encode_outcome(a.outcome) or "", a.additional_info, a.at) for a in changes
    ]


AttemptRow = tuple[str, int, float, str, str, str, str, str, str, str]


def attempt_rows(updates: Iterable[Update]) -> tuple[list[AttemptRow], list[tuple[Any, ...]]]:
    """What `insert_attempt` takes for each update that records a try at the provider that ended
    (transid, attempt, at, connector, kind, outcome, code, detail, request, answer), and what
    `insert_retry_attempt` takes for each to be retried (the same and ATTEMPTS_KEPT): a batch without
    retries, the usual one, costs one executemany and no count."""
    ended: list[AttemptRow] = []
    retried: list[tuple[Any, ...]] = []
    for u in updates:
        if (a := u.provider_attempt) is None:
            continue
        row = (
            u.transid,
            a.attempt,
            a.at,
            a.connector,
            a.kind,
            a.outcome,
            a.code,
            a.detail,
            a.request,
            a.answer,
        )
        if a.outcome == "retry":
            retried.append((*row, ATTEMPTS_KEPT))
        else:
            ended.append(row)
    return ended, retried


def provider_attempt(r: Any) -> ProviderAttempt:
    """An `attempts_of` row: at, attempt, connector, kind, outcome, code, detail, request, answer."""
    return ProviderAttempt(float(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8])

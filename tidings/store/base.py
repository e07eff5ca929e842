"""The Store interface: everything Tidings keeps durably, whatever the database.

Callers see plain records and async methods; no SQL, connection or transaction leaks out. Each method
is atomic: a status change and the notification that reports it are committed together, and
`accept` returns only once every message of the request is committed.
"""

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from tidings.policy.contact import PolicyCheck
from tidings.statuses import Outcome, Status
from tidings.store.listing import MessageQuery, MessageSummary, NotificationDetail, Stats
from tidings.store.purge import PurgeBatch


class StoreUnavailable(Exception):
    """The store cannot be opened (its database is in use, missing, or unreadable); the message says
    why in words for the operator."""


@dataclass(slots=True)
class NewMessage:
    transid: str
    service_id: str
    channel: str
    address: str
    address_type: str
    content: bytes  # the validated channel object, JSON
    parts: int
    correlationid: str | None
    callback_data: str | None
    notify_url: str | None
    priority: int
    expiry: float | None
    created_at: float
    policy: bytes | None = None  # the request's contactPolicy check (JSON), if it asked for one
    not_before: float | None = None  # v2 sendAt: the first due time (None: due at once)
    receipts: str | None = None  # the status words to notify, comma-separated (None: all; `notifies`)
    gtrid: str | None = None  # v1 `gtrId`: sent with every notification of the message (x-wx-gtrid)


def notifies(receipts: str | None, status_word: str) -> bool:
    """Whether a message whose requested receipts are `receipts` (v2 `requestedReceipts`, as stored:
    status words joined by commas; None, every status) is notified of a status."""
    return receipts is None or status_word in receipts.split(",")


@dataclass(slots=True)
class NewLink:
    code: str
    service_id: str
    transid: str
    linkid: int  # 0 for a shortened URL
    expires_at: float | None
    created_at: float
    target: str | None = None  # a shortened URL's target
    track: bool = False  # Clicked notifications


@dataclass(slots=True)
class Click:
    service_id: str
    transid: str
    linkid: int
    expires_at: float | None
    target: str | None
    track: bool


@dataclass(slots=True)
class DueMessage:
    """A message a worker has claimed: to send (Queued) or to finish (Submitted, receipt due)."""

    transid: str
    service_id: str
    channel: str
    address: str
    address_type: str
    content: bytes  # as stored (JSON): the dispatcher decodes it into its channel's content Struct
    parts: int
    correlationid: str | None
    callback_data: str | None
    notify_url: str | None
    priority: int
    expiry: float | None
    status: Status
    attempts: int
    ext_id: str | None
    pending: Outcome | None  # a receipt the connector scheduled, applied when next_at comes
    policy: dict[str, Any] | None = None  # a contact-policy check still to pass before sending
    receipts: str | None = None  # the statuses to notify (`notifies`)
    gtrid: str | None = None  # v1 `gtrId` (x-wx-gtrid)


@dataclass(slots=True)
class OutgoingNotification:
    event_id: str
    url: str
    body: bytes
    gtrid: str | None = None  # its message's v1 `gtrId`, posted as the x-wx-gtrid header too


@dataclass(slots=True)
class ProviderAttempt:
    """One try at handing a message to its provider, as the console's message page shows it: when, the
    connector (its label and kind), what went out and what came back (`channels.base.Exchange`: secrets
    removed, each at most 4 KiB; empty when nothing reached the provider), and what the dispatcher made
    of it."""

    at: float
    attempt: int  # the message's attempt number for this try (a try that costs none repeats it)
    connector: str  # the connector's label
    kind: str  # the connector's kind: smpp, whatsapp, push, smtp, sandbox, …
    outcome: str  # accepted | retry | failed | rerouted (`ATTEMPT_OUTCOMES`)
    code: str  # the status code it ended with; for a retry, the provider's code when it named one
    detail: str  # the provider's id for the message (accepted), else the failure in words
    request: str = ""
    answer: str = ""


ATTEMPT_OUTCOMES = ("accepted", "retry", "failed", "rerouted")


@dataclass(slots=True)
class Update:
    """What happened to one claimed message. With `outcome` None it is only rescheduled."""

    transid: str
    service_id: str
    at: float
    next_at: float | None
    attempts: int
    outcome: Outcome | None = None
    pending: Outcome | None = None
    ext_id: str | None = None
    error: str | None = None
    notification: OutgoingNotification | None = None
    # Every part's id when the message went out in several parts (each gets its own receipt).
    part_ids: tuple[str, ...] = ()
    # The failure said the address is gone for good (FailureKind.GONE): remember it with the outcome's
    # code, so later messages to it fail without a provider call (`gone_addresses`).
    gone: bool = False
    # The message goes by another channel from now on (`channels.base.Fallback`: RCS to SMS): its
    # channel, content and parts change, and it is due again at `next_at` (with `outcome` None).
    reroute: tuple[str, bytes, int] | None = None
    # `outcome` is the message's own pending outcome, now due (the sandbox's Delivered). A receipt or
    # status recorded since the claim (`advance`) has cleared it and moved the message on: then this
    # update is dropped whole, status, event and notification, rather than moving the message back.
    applies_pending: bool = False
    # The try at the provider this update records (None: no connector was asked), kept with it.
    provider_attempt: ProviderAttempt | None = None


def pending_transids(updates: Sequence[Update]) -> list[str]:
    """The messages whose update applies their pending outcome, in lock order."""
    return sorted(u.transid for u in updates if u.applies_pending)


@dataclass(slots=True)
class IncomingReceipt:
    """A provider's final report on a message it took, before we know which message: `keys` are the
    candidate forms of the provider's id for it (as `Update.ext_id` records them), the exact one first."""

    keys: list[str]
    outcome: Outcome
    at: float


@dataclass(slots=True)
class ReceiptTarget:
    """What a receipt's notification needs to know about its message."""

    transid: str
    service_id: str
    channel: str
    address: str
    address_type: str
    parts: int
    correlationid: str | None
    callback_data: str | None
    notify_url: str | None
    receipts: str | None = None  # the statuses to notify (`notifies`)
    gtrid: str | None = None  # v1 `gtrId` (x-wx-gtrid)


# Builds the notification that reports a receipt's outcome (None: the message has no notify URL).
ReceiptNotice = Callable[[ReceiptTarget, Outcome, float], "OutgoingNotification | None"]


@dataclass(slots=True)
class IdempotentAnswer:
    service_id: str
    key: str
    response: bytes
    at: float


@dataclass(slots=True)
class InboundMessage:
    tid: str
    service_id: str | None
    channel: str
    source: str
    destination: str
    text: str
    parts: int
    at: float


@dataclass(slots=True)
class ConsentChange:
    service_id: str
    group_id: str  # "" for the service-wide record the keywords write
    channel: str  # the channel category: text, email, …
    address: str
    consent: bool
    reason: str
    source: str
    expires: float | None
    at: float


# A notification's receiver: scheme://host[:port] of its URL, lowercased, without credentials. The
# PostgreSQL claim computes the same key in SQL (queries.sql, claim_notifications): keep them in step.
_RECEIVER = re.compile(r"([^:/?#]+)://(?:[^/?#@]*@)?([^/?#]*)")


def receiver_of(url: str) -> str:
    m = _RECEIVER.match(url)
    return f"{m[1]}://{m[2]}".lower() if m else url.lower()


@dataclass(slots=True)
class ClaimedNotification:
    seq: int
    event_id: str
    transid: str
    service_id: str
    url: str
    body: bytes
    attempts: int  # tries made before this one
    gtrid: str | None = None  # the x-wx-gtrid header's value (OutgoingNotification.gtrid)


NotificationState = Literal["sent", "pending", "failed"]


@dataclass(slots=True)
class NotificationResult:
    seq: int
    state: NotificationState  # "pending" means: try again at next_at
    at: float
    next_at: float
    http_status: int | None = None
    error: str | None = None
    counted: bool = True  # False: the try was not the receiver's fault (our shutdown, our own load)


@dataclass(slots=True)
class HistoryEntry:
    status: str
    code: str
    description: str
    at: float


@dataclass(slots=True)
class NotificationRecord:
    event_id: str
    url: str
    state: str
    attempts: int
    http_status: int | None
    last_error: str | None
    created_at: float
    updated_at: float


@dataclass(slots=True)
class MessageRecord:
    transid: str
    service_id: str
    channel: str
    address: str
    address_type: str
    content: dict[str, Any]
    parts: int
    correlationid: str | None
    callback_data: str | None
    notify_url: str | None
    priority: int
    expiry: float | None
    status: str
    code: str
    description: str
    created_at: float
    updated_at: float
    attempts: int
    history: list[HistoryEntry]
    notifications: list[NotificationRecord]
    clicks: int = 0  # on the message's short links
    receipts: str | None = None  # the statuses to notify (`notifies`)


@dataclass(slots=True)
class Device:
    """A device registered for push (CONTRACT.md "Devices and users"). `token` is the provider's token
    (FCM registration token, APNs hex token, WNS channel URI) or, for web push, the subscription's
    endpoint, with its keys in `p256dh` and `auth`."""

    device_id: str
    app_id: str
    service_id: str
    user_id: str
    customer_id: str
    platform: str  # android | ios | web | windows
    provider: str  # fcm | apns | webpush | wns
    token: str
    p256dh: str = ""
    auth: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class GoneAddress:
    service_id: str
    channel: str
    address: str
    code: str
    description: str
    at: float


@dataclass(slots=True)
class Advance:
    """A status a message moves forward to on the word of its app or provider (a push receipt, later a
    WhatsApp status webhook): Submitted < Delivered < Read. It never moves a message backwards nor out
    of a failure, and a repeat changes nothing."""

    service_id: str
    transid: str
    outcome: Outcome
    at: float


@dataclass(slots=True)
class ExtAdvance:
    """A status a provider reports for a message it knows only by its own id (`Update.ext_id`, such as
    "wa:<wamid>"), within one service: a WhatsApp or Messenger status webhook. It moves the message
    forward as `Advance` does and may also fail a message still Submitted (the provider learnt of the
    failure after taking it); a failure after Delivered, or any repeat, changes nothing.
    `additional_info` is passed to the notice (a provider's error text)."""

    service_id: str
    ext_id: str
    outcome: Outcome
    at: float
    additional_info: str = ""


@dataclass(slots=True)
class Watermark:
    """A Messenger delivery or read watermark, as one change among `advance_by_ext`'s: every Messenger
    (`fb`) message of the service to `address` (a PSID) created before `before` and sent (Submitted or
    later) moves through `steps` in order (each a forward status, as `Advance`: Delivered, or Delivered
    then Read), oldest message first, each step with its history entry and notification."""

    service_id: str
    address: str
    before: float  # epoch seconds
    steps: Sequence[Outcome]
    at: float


@dataclass(slots=True)
class Report:
    """A report on a message known by its transid alone, from outside a provider's API: an email bounce
    report (found through its VERP envelope sender) or an unsubscribe (through its link). `outcome` moves
    the message as `ExtAdvance` does (forward, or from Submitted to a failure such as Bounce); None leaves
    its status. `gone` remembers the message's address as gone for its service and channel, with that
    code and description, whether or not the status moved: a hard bounce after a success report still
    says the mailbox is dead. `additional_info` is passed to the notice."""

    transid: str
    at: float
    outcome: Outcome | None = None
    gone: Outcome | None = None
    additional_info: str = ""


# Builds the notification reporting an `ExtAdvance` (None: the message has no notify URL); its last
# argument is the change's `additional_info`.
ExtNotice = Callable[[ReceiptTarget, Outcome, float, str], "OutgoingNotification | None"]


@dataclass(slots=True)
class CatalogueEntry:
    kind: str  # services, templates, smartlinks, groups
    name: str  # its key fields joined by "/": "svc-a", "svc-a/sms/otp", "svc-a/5"
    body: bytes  # its config table, JSON
    origin: str = "admin"  # config, admin, or demo


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """One run of a process that publishes its connectors' reports: `id` is unique to the run
    (host:pid:nonce, so a reused pid is another process); the rest is how the console names it."""

    id: str
    host: str
    pid: int
    role: str  # serve or worker
    started_at: float  # epoch seconds, its own clock


@dataclass(frozen=True, slots=True)
class PublishedReport:
    """A process's report on one connector as the store holds it: the JSON it published
    (`tidings.observe.cluster`) and how long ago, by the store's clock (PostgreSQL's, so hosts need not
    agree)."""

    process: ProcessRecord
    connector: str
    body: str
    age: float


class Store(Protocol):
    async def open(self) -> None:
        """Create or migrate the schema and hand out again any work a crashed process held."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Return once the store can serve a request; raise when it cannot."""

    async def waits(self) -> list[str]:
        """What the database says this process's connections are waiting on right now (a lock, and the
        sessions that hold it), one line each, for the watchdog; empty when it cannot say."""

    async def load_catalogue(self) -> tuple[int, list[CatalogueEntry]]:
        """The catalogue's revision and every entry, read together."""

    async def catalogue_revision(self) -> int: ...

    async def change_catalogue(self, change: CatalogueEntry, how: Literal["add", "update", "delete"]) -> bool:
        """Add an entry (False if its kind and name exist), or update or delete one (False if it does
        not exist); an update keeps the entry's origin. The revision moves with every change."""

    async def seed_catalogue(self, entries: Sequence[CatalogueEntry], drop_demo: bool) -> None:
        """Write the config file's entries (origin 'config'), delete those of origin 'config' it no
        longer names and, with `drop_demo`, the demo service; in one transaction."""

    async def accept(
        self,
        messages: Sequence[NewMessage],
        idempotent: IdempotentAnswer | None = None,
        links: Sequence[NewLink] = (),
    ) -> bytes | None:
        """Commit every message (one row per destination address) before returning. With `idempotent`,
        atomically: when the service already used that key in the last 24 hours, store nothing and return
        the answer saved then; else save this answer with the messages and return None."""

    async def apply_receipts(self, receipts: Sequence[IncomingReceipt], notice: ReceiptNotice) -> None:
        """Give each receipt's message its final status, history entry and notification (built by
        `notice`), in one transaction. A message already final is left as it is. A receipt whose message
        is not yet recorded as sent is kept until it is: `record` then makes it the message's pending
        outcome, due at once."""

    async def record_inbound(
        self,
        message: InboundMessage,
        notification: OutgoingNotification | None,
        consent: ConsentChange | None,
    ) -> bool:
        """Keep an inbound message, queue its webhook and apply its consent change, together; True. A
        message whose `tid` is kept already (a provider's repeat, when the tid is the provider's id) is
        left as it is, with nothing queued or applied: False."""

    async def last_inbound(self, service_id: str, channel: str, sources: Sequence[str]) -> dict[str, float]:
        """The newest kept inbound message's time (`InboundMessage.at`) from each of `sources` to the
        service on the channel, by source; a source that never wrote is absent. One query for the
        whole batch (the WhatsApp connector's customer-service window)."""

    async def get_consent(
        self, service_id: str, group_id: str, channel: str, address: str
    ) -> ConsentChange | None: ...

    async def click(self, code: str, at: float) -> Click | None:
        """Count a click on a short link; None for a code never handed out."""

    async def find_link(self, code: str) -> Click | None:
        """A short link as `click` finds it, counting nothing (a HEAD request is not a click)."""

    async def earlier_answer(self, service_id: str, key: str, now: float) -> bytes | None:
        """The answer saved with this Idempotency-Key in the 24 hours before `now`, if any; read only
        (`accept` stays the atomic check)."""

    async def add_notification(self, transid: str, service_id: str, note: OutgoingNotification) -> None:
        """Queue a notification that reports no status change (a click), after the message's others;
        none for a message that is not there (purged since the caller read it)."""

    async def save_consent(self, consent: ConsentChange) -> None: ...

    async def delete_consent(
        self, service_id: str, group_id: str, address: str, channel: str | None
    ) -> None: ...

    async def check_policies(self, checks: Sequence[PolicyCheck], now: float) -> dict[str, str]:
        """Run each message's contact-policy check in one transaction: consent records, then the
        frequency caps, counting each message that passes a capped check. Return the refusal code of
        every message refused; those that pass are marked as passed (never checked again)."""

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[DueMessage]:
        """Claim up to `limit` messages whose next step is due, highest priority first."""

    async def next_due(self) -> float | None:
        """When the earliest message next needs work (a receipt, a retry, an expired lease)."""

    async def backlog(self) -> tuple[dict[int, int], list[tuple[str, int]]]:
        """For /metrics: messages waiting for work per lane, and notifications not yet sent per URL."""

    async def record(self, updates: Sequence[Update], notice: ExtNotice | None = None) -> None:
        """Apply status changes, history entries, their notifications and provider attempts in one
        transaction; a failure with `gone` also remembers its message's address as gone
        (`gone_addresses`), with the failure's code, description and time, replacing what was
        remembered for it before. With `notice` (the
        dispatcher's), a send recorded under a WhatsApp or Messenger id (`wa:`/`fb:`) also takes the
        statuses `advance_by_ext` kept for that id before it was recorded (same service, at most five
        minutes older than the send) and applies them, in the order they came, as `advance_by_ext`
        would, at the send's time, each with the notification `notice` builds: after the send's own."""

    async def claim_notifications(
        self, now: float, limit: int, lease_s: float, busy: Sequence[str] = ()
    ) -> list[ClaimedNotification]:
        """Claim up to `limit` due notifications, oldest first, skipping those whose receiver
        (`receiver_of(url)`) is in `busy`: a receiver with no free slot must not take the others'."""

    async def finish_notifications(self, results: Sequence[NotificationResult]) -> None: ...

    async def get_message(self, service_id: str, transid: str) -> MessageRecord | None:
        """The message, its status history and its notifications, if it belongs to the service."""

    async def advance(self, changes: Sequence[Advance], notice: ReceiptNotice) -> list[bool]:
        """Move each message forward to its outcome's status (see `Advance`), with its history entry
        and the notification `notice` builds, in one transaction; True for each that moved. A message
        of another service, unknown, not yet sent (Queued), or already at or past that status (or
        failed, expired) is left alone, as is a change to a status outside the forward order. Changes
        apply in order: each sees the ones before it. Moving a message on ends any receipt scheduled for
        it (`Update.pending`), which would otherwise be applied later over what the app said."""

    async def advance_by_ext(
        self, changes: Sequence[ExtAdvance | Watermark], notice: ExtNotice
    ) -> list[bool | None]:
        """Apply each provider status (see `ExtAdvance`) to the service's message recorded with that
        `ext_id` (a WhatsApp or Messenger message: channels `whatsapp` and `fb`), and each `Watermark`
        to the messages it covers, with their history entries and the notifications `notice` builds, in
        one transaction: True for each that moved (a watermark: any message), False for each whose
        message stays as it is (a watermark: none moved), None for an id no message of the service was
        recorded with (yet). Changes apply in order, each seeing the ones before it (a Messenger body's
        read after its delivery finds the message Delivered). A change with None is kept, in the same
        transaction (committed durably), for the send that `record` records later under that id (Meta
        can report a send before its record commits); kept changes older than five minutes are
        forgotten. A watermark is never kept: it covers only messages already recorded as sent."""

    async def message_target(self, transid: str) -> tuple[ReceiptTarget, Status] | None:
        """A message found by its transid alone, whatever its service, with its status; None when no
        message has that transid (a bounce report names only the transid)."""

    async def report(self, reports: Sequence[Report], notice: ExtNotice) -> list[bool | None]:
        """Apply each report (see `Report`) with its history entry and the notification `notice` builds,
        in one transaction, committed durably before returning (a bounce report is acknowledged after
        this): True for each whose message moved, False for each whose message stays as it is, None for
        a transid no message has. Reports apply in order, each seeing the ones before it."""

    async def advance_by_watermark(
        self,
        service_id: str,
        address: str,
        before: float,
        steps: Sequence[Outcome],
        at: float,
        notice: ExtNotice,
    ) -> list[str]:
        """One Messenger delivery or read watermark (see `Watermark`) in a transaction of its own;
        `advance_by_ext` applies a webhook body's in one, in order with its mids. Return the transids
        that moved."""

    async def save_device(self, device: Device) -> Device:
        """Register a device, or update the one with the same app, provider and token (keeping its
        device_id, service_id and created_at); return what is stored. A new device gets a new device_id
        unless the caller gave one; times left at 0 are now."""

    async def list_devices(self, app_id: str, user_id: str | None = None) -> list[Device]:
        """An app's devices (one user's, with `user_id`), oldest first."""

    async def find_devices(self, app_id: str, key: str, value: str) -> list[Device]:
        """The app's devices whose `key` is `value`, oldest first: key is user_id, customer_id,
        device_id or token (anything else raises ValueError)."""

    async def devices_for(self, app_id: str, key: str, values: Sequence[str]) -> dict[str, list[Device]]:
        """`find_devices` for many values in one query: the app's devices whose `key` is one of `values`,
        by value, each list oldest first; a value without devices is absent. Keys as `find_devices`
        (anything else raises ValueError, even with no values)."""

    async def delete_devices(self, app_id: str, device_ids: Sequence[str]) -> int:
        """Remove devices of the app; return how many there were."""

    async def gone_addresses(
        self, service_id: str, channel: str, addresses: Sequence[str]
    ) -> dict[str, GoneAddress]:
        """Which of the addresses are remembered as gone for the service and channel (see
        `Update.gone`), by address; one query for the whole batch."""

    async def list_gone(self, service_id: str | None = None) -> list[GoneAddress]:
        """Every remembered gone address (one service's with `service_id`), newest first."""

    async def forget_gone(self, service_id: str, channel: str, address: str) -> bool:
        """Stop remembering an address as gone (the admin removes it from the list); False when it was
        not remembered."""

    # -- the message log (`tidings.store.listing`) -------------------------------------------------

    async def list_messages(self, query: MessageQuery) -> list[MessageSummary]:
        """Messages matching every filter of `query`, newest first by (created_at, seq), at most
        `query.limit` (capped at 200); a page continues from `query.before`."""

    async def notifications_of(self, service_id: str, transid: str) -> list[NotificationDetail]:
        """A message's notifications in the order they were made, with their next try and body."""

    async def attempts_of(self, service_id: str, transid: str) -> list[ProviderAttempt]:
        """The message's provider attempts (`Update.provider_attempt`), in the order they were made;
        empty when the message is not the service's. A message keeps its first ATTEMPTS_KEPT retries
        (`store.rows`) and every try that ended otherwise."""

    async def resend_notification(self, service_id: str, event_id: str, now: float) -> bool:
        """Make a sent or given-up notification due again at `now`, with the same event id and its
        tries counted from 0; False when it is not the service's, not finished, or another notification
        of its message is still on its way."""

    async def message_stats(self, service_id: str | None, since: float) -> Stats:
        """Accepted, delivered and failed messages per channel and minute since `since`, the queue depth
        and the notification backlog per receiver (one service's, or every service's with None)."""

    # -- retention (`tidings.store.purge`, `tidings.retention`) -------------------------------------

    def purging(self) -> AbstractAsyncContextManager[bool]:
        """Hold the right to purge for a pass: True when this process has it, False while another one
        purges (PostgreSQL; one process owns a SQLite file, so it is always True there)."""

    async def purge_messages(
        self,
        before: float,
        now: float,
        after: tuple[float, int] | None,
        limit: int,
        dry_run: bool = False,
    ) -> PurgeBatch:
        """One batch, in one transaction: look at the next `limit` messages created before `before`,
        oldest first from the cursor `after` ((created_at, seq); None: the oldest), and delete those
        that may go (`tidings.store.purge`: final, last changed before `before`, every notification sent
        or given up, no short link valid at `now`) with every row under their transids. A message
        another transaction is changing is left for the next pass. `dry_run` deletes nothing but
        counts the same."""

    async def purge_inbound(
        self, before: float, after: tuple[float, int] | None, limit: int, dry_run: bool = False
    ) -> PurgeBatch:
        """`purge_messages` for inbound messages received before `before` (with their notification,
        once sent or given up)."""

    async def forget_expired(self, now: float, dry_run: bool = False) -> dict[str, int]:
        """Delete the rows that have outlived their use (`rows.EXPIRING`, as `open` does); how many, by
        table."""

    # -- the connectors' reports of every process (`tidings.observe.cluster`) -------------------------

    async def publish_reports(
        self, process: ProcessRecord, reports: Sequence[tuple[str, str]], forget_after_s: float
    ) -> None:
        """In one transaction: make `reports` ((connector, JSON), one per connector it runs) the
        process's rows, stamped now; delete its rows for any other connector, and every process's rows
        published more than `forget_after_s` ago (a process gone without a clean stop)."""

    async def published_reports(self) -> list[PublishedReport]:
        """Every process's rows, stale ones too, ordered by process and connector. (A SQLite store
        forgets every row when it opens: one process owns the file, so any row left is a crashed
        process's.)"""

    async def unpublish_reports(self, process_id: str) -> None:
        """Delete a process's rows (it is stopping)."""

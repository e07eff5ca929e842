"""The v2 accept path (`POST /v2/messages`), free of HTTP: a decoded v2 request becomes committed
messages, one per address, through the channel's `V2Channel` (`tidings.schema.v2_channel`).

It reuses `Intake`'s registries and rate limiter, and what the other APIs do: the app check of app
channels (`from` is the app id: 7104), templates (`template{id}`: every placeholder needs a value, 7003),
contact-policy groups (7004), smart links (a link of the service's own per message), the tps cap (7009)
and the rate limit (7020, taken last so that a refused request spends none of the budget), and the SMS
API's Idempotency-Key. Nothing of a refused request is stored.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from tidings import clock, ids
from tidings.errors import (
    ApiError,
    InvalidAppId,
    InvalidParameter,
    MandatoryMissing,
    RateLimited,
    TooManyDestinations,
)
from tidings.intake import Intake
from tidings.links.smart import new_code
from tidings.observe.metrics import METRICS
from tidings.schema.v2 import V2Request, named
from tidings.schema.v2_channel import V2Channel, V2Destination, V2Message, V2Parts
from tidings.services import Service
from tidings.store.base import IdempotentAnswer, NewLink, NewMessage
from tidings.templates import placeholders

SMARTLINK = re.compile(r"\{\{\s*smartlink_([^}\s]*)\s*\}\}")
# The leading field path of an error's words ("content.subject is …"), for a channel's error that
# named no field apart.
_LEADING_FIELD = re.compile(r"([A-Za-z_][\w-]*(?:\[\d+\])*(?:\.[A-Za-z_][\w-]*(?:\[\d+\])*)*)")
_TOP_FIELDS = frozenset({"from", "to", "content", "options", "template", "substitutions"})


class IntakeV2:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def accept(
        self,
        service: Service,
        req: V2Request,
        idempotency_key: str | None,
        answer: Callable[[Sequence[str], float], bytes],
    ) -> tuple[bytes, bool]:
        """Commit a v2 request; return the answer and whether it replays an earlier one with the same
        Idempotency-Key (then nothing new is stored or sent). `answer` renders the answer from the new
        messages' ids and the accept time."""
        store = self.intake.store
        if idempotency_key is not None:
            earlier = await store.earlier_answer(service.id, idempotency_key, clock.now())
            if earlier is not None:
                return earlier, True
        spec = req.spec
        channel = spec.v2
        assert channel is not None  # the envelope accepts only channels v2 serves
        if len(req.addresses) > service.tps:
            raise TooManyDestinations(
                f"{len(req.addresses)} addresses, more than this service's tps of {service.tps}", field="to"
            )
        app_id = self._app(service, req) if spec.needs_app else None
        content = self._content(service, req)
        parts = V2Parts(
            service=service,
            sender=req.sender,
            content=content,
            options=req.options,
            extra=req.extra,
            public_url=self.intake.public_url,
            addresses=len(req.addresses),
        )
        _call(lambda: channel.check(parts), req)
        policy = self._policy(service, req)
        smartlinks = self._smartlinks(service, req, content)
        transids = ids.new_ids(len(req.addresses))
        now = clock.now()
        messages: list[NewMessage] = []
        links: list[NewLink] = []
        entries: dict[int, list[str]] = {}  # each `to[]` entry's addresses (email's multipleToRecipients)
        for a in req.addresses:
            entries.setdefault(a.entry, []).append(a.value)
        groups = {i: tuple(values) for i, values in entries.items()}
        for transid, a in zip(transids, req.addresses, strict=True):
            subs: Mapping[str, Any] = a.substitutions
            if smartlinks:
                subs = {**subs, **self._own_links(service, transid, smartlinks, now, links)}
            to = V2Destination(a.value, a.key, subs, a.correlationid, transid, now, groups[a.entry])
            made = _message(channel, parts, to, req)
            data = made.content.data
            if app_id is not None:  # an app channel's content names its app, for its connector
                data = msgspec.structs.replace(data, appid=app_id)
            links.extend(made.links)
            messages.append(
                NewMessage(
                    transid=transid,
                    service_id=service.id,
                    channel=spec.name,
                    address=a.value,
                    address_type=a.key,
                    content=msgspec.json.encode(data),
                    parts=made.content.parts,
                    correlationid=a.correlationid,
                    callback_data=req.callback_data,
                    notify_url=req.notify_url,
                    priority=2,
                    expiry=req.expiry,
                    created_at=now,
                    policy=policy,
                    not_before=req.send_at,
                    receipts=req.receipts,
                )
            )
        # Last check before storing, so refused requests spend none of the service's budget.
        if not await self.intake.limiter.take(service.id, service.tps, len(messages)):
            raise RateLimited()
        body = answer(transids, now)
        idempotent = None
        if idempotency_key is not None:
            idempotent = IdempotentAnswer(service.id, idempotency_key, body, now)
        earlier = await store.accept(messages, idempotent, links)
        if earlier is not None:
            return earlier, True
        METRICS.accepted(messages)
        self.intake.on_accept()
        return body, False

    def _app(self, service: Service, req: V2Request) -> str:
        """The app `from` names for an app channel (RCS): one of this service's, serving the channel
        (7104 naming `from` otherwise, as v1 checks `appid`)."""
        if not req.sender:
            raise MandatoryMissing(f"the app id of a {req.spec.name} app is required", field="from")
        app = self.intake.apps.find(req.sender)
        if app is None or app.service_id != service.id or not app.serves(req.spec.name):
            raise InvalidAppId(
                f"{req.sender!r} is not an app of this service serving {req.spec.name}", field="from"
            )
        return app.id

    def _content(self, service: Service, req: V2Request) -> dict[str, Any]:
        """`content`, or the text of the service's template `template{id}` under it (the request's own
        `content.text` wins, as a v1 channel object's text does over a template's). Every placeholder
        of a template needs a value for every address (7003), a smart link's aside."""
        if req.template is None:
            return req.content
        template = self.intake.templates.find(service.id, req.spec.name, req.template)
        if template is None:
            raise InvalidParameter(
                f"{req.template!r} is not a {req.spec.name} template of this service", field="template.id"
            )
        if req.content.get("text"):
            return req.content
        needed = [n for n in placeholders(template.text) if not n.startswith("smartlink_")]  # ours to fill
        for a in req.addresses:
            for name in needed:
                if a.substitutions.get(name) is None:
                    raise MandatoryMissing(
                        f"the template {template.id!r} uses it", field=f"substitutions.{name}"
                    )
        return {"type": "text", **req.content, "text": template.text}

    def _policy(self, service: Service, req: V2Request) -> bytes | None:
        if req.policy is None:
            return None
        group = req.policy["group"]
        if self.intake.groups.find(service.id, group) is None:
            raise InvalidParameter(
                f"{group!r} is not a group of this service", field="contactPolicy.contactPolicyGroup"
            )
        return msgspec.json.encode(req.policy)

    def _smartlinks(
        self, service: Service, req: V2Request, content: Mapping[str, Any]
    ) -> dict[int, float | None]:
        """The smart links the text uses, with their validity (minutes): every `smartlinks[]` entry must
        be one of the service's, and every `{{smartlink_<id>}}` of the text needs an entry."""
        for i, linkid in enumerate(req.smartlinks):
            if self.intake.smartlinks.find(service.id, linkid) is None:
                raise InvalidParameter(
                    f"{linkid} is not a smart link of this service", field=f"smartlinks[{i}].smartlinkId"
                )
        text = content.get("text")
        used: dict[int, float | None] = {}
        for name in SMARTLINK.findall(text if isinstance(text, str) else ""):
            if not name.isdigit() or int(name) not in req.smartlinks:
                raise InvalidParameter(
                    f"{{{{smartlink_{name}}}}} in the text has no entry", field="smartlinks"
                )
            used[int(name)] = req.smartlinks[int(name)]
        return used

    def _own_links(
        self, service: Service, transid: str, used: dict[int, float | None], now: float, made: list[NewLink]
    ) -> dict[str, str]:
        """This message's own short link for each smart link its text uses, as substitutions."""
        values: dict[str, str] = {}
        for linkid, validity in used.items():
            code = new_code()
            expires = None if validity is None else now + validity * 60
            made.append(NewLink(code, service.id, transid, linkid, expires, now))
            values[f"smartlink_{linkid}"] = f"{self.intake.public_url}/l/{code}"
        return values


def _call(check: Callable[[], None], req: V2Request) -> None:
    try:
        check()
    except ApiError as exc:
        raise named(exc, _field_in(exc, req)) from None


def _message(channel: V2Channel, parts: V2Parts, to: V2Destination, req: V2Request) -> V2Message:
    try:
        return channel.message(parts, to)
    except ApiError as exc:
        raise named(exc, _field_in(exc, req)) from None


def _field_in(exc: ApiError, req: V2Request) -> str:
    """The field a channel's error names in its words only ("content.subject is missing"): its leading
    path when that starts with a field of the request, else `content`."""
    m = _LEADING_FIELD.match(exc.detail)
    if m is not None:
        head = re.split(r"[.\[]", m.group(1), maxsplit=1)[0]
        if head in _TOP_FIELDS or head in req.extra:
            return m.group(1)
    return "content"

"""The accept path, free of HTTP: a decoded request becomes committed messages, one per address."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

from tidings import clock, ids
from tidings.errors import RateLimited, TooManyDestinations
from tidings.policy.ratelimit import RateLimiter
from tidings.schema.sms_api import SmsRequest
from tidings.schema.v1 import V1Request
from tidings.services import Service
from tidings.store.base import IdempotentAnswer, NewMessage, Store


@dataclass(frozen=True, slots=True)
class Accepted:
    transid: str
    correlationid: str | None


class Intake:
    def __init__(self, store: Store, on_accept: Callable[[], None]) -> None:
        self.store = store
        self.on_accept = on_accept
        self.limiter = RateLimiter()

    async def accept_v1(self, service: Service, req: V1Request) -> list[Accepted]:
        """Check what depends on the service, commit every message, and only then answer."""
        channel = req.channel
        content = channel.content(req.channel_object, "channels." + ".".join(channel.path), service.senderids)
        if len(req.addresses) > service.tps:
            raise TooManyDestinations(
                f"{len(req.addresses)} addresses, more than this service's tps of {service.tps}"
            )
        # Last check before storing, so refused requests spend none of the service's budget.
        if not self.limiter.take(service.id, service.tps, len(req.addresses)):
            raise RateLimited()
        body = msgspec.json.encode(content.data)
        transids = ids.new_ids(len(req.addresses))
        now = clock.now()
        await self.store.accept(
            [
                NewMessage(
                    transid=transid,
                    service_id=service.id,
                    channel=channel.name,
                    address=a.value,
                    address_type=channel.address_key,
                    content=body,
                    parts=content.parts,
                    correlationid=a.correlationid,
                    callback_data=req.callback_data,
                    notify_url=req.notify_url,
                    priority=req.priority,
                    expiry=req.expiry,
                    created_at=now,
                )
                for transid, a in zip(transids, req.addresses, strict=True)
            ]
        )
        self.on_accept()
        return [Accepted(t, a.correlationid) for t, a in zip(transids, req.addresses, strict=True)]

    async def accept_sms(
        self,
        service: Service,
        req: SmsRequest,
        idempotency_key: str | None,
        answer: Callable[[Sequence[str], float], bytes],
    ) -> tuple[bytes, bool]:
        """Commit an SMS API request; return the answer and whether it is a replay of an earlier one
        with the same Idempotency-Key (then nothing new is stored or sent). `answer` renders the answer
        from the new messages' ids and acceptance time, so that a replay can repeat it exactly."""
        if len(req.items) > service.tps:
            raise TooManyDestinations(
                f"{len(req.items)} destinations, more than this service's tps of {service.tps}", field="to"
            )
        if not self.limiter.take(service.id, service.tps, len(req.items)):
            raise RateLimited()
        transids = ids.new_ids(len(req.items))
        now = clock.now()
        body = answer(transids, now)
        messages = [
            NewMessage(
                transid=transid,
                service_id=service.id,
                channel="sms",
                address=item.address,
                address_type="msisdn",
                content=msgspec.json.encode(item.content),
                parts=item.parts,
                correlationid=item.correlationid,
                callback_data=req.callback_data,
                notify_url=req.callback_url,
                priority=2,
                expiry=req.expiry,
                created_at=now,
            )
            for transid, item in zip(transids, req.items, strict=True)
        ]
        idempotent = None
        if idempotency_key is not None:
            idempotent = IdempotentAnswer(service.id, idempotency_key, body, now)
        earlier = await self.store.accept(messages, idempotent)
        if earlier is not None:
            return earlier, True
        self.on_accept()
        return body, False

"""The accept path, free of HTTP: a decoded request becomes committed messages, one per address."""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from tidings import clock, ids
from tidings.apps import App, AppRegistry
from tidings.errors import InvalidAppId, InvalidParameter, RateLimited, TooManyDestinations
from tidings.links.smart import HTTPS_URL, SHORT_LINK_S, SmartlinkRegistry, new_code
from tidings.links.smart import PLACEHOLDER as SMARTLINK
from tidings.observe.metrics import METRICS
from tidings.policy.contact import GroupRegistry
from tidings.policy.ratelimit import Limiter, RateLimiter
from tidings.schema.common import ChannelContent
from tidings.schema.sms_api import SmsItem, SmsRequest
from tidings.schema.v1 import V1Request
from tidings.schema.whatsapp import NamespaceMismatch, WhatsAppContent, decode_whatsapp, sealed_template
from tidings.schema.whatsapp_api import WhatsAppRequest
from tidings.services import Service
from tidings.specs import spec as find_spec
from tidings.specs.sms import SMS
from tidings.specs.whatsapp import WHATSAPP, WhatsAppMessage
from tidings.store.base import IdempotentAnswer, NewLink, NewMessage, Store
from tidings.templates import Template, TemplateRegistry, render, whatsapp_message


@dataclass(frozen=True, slots=True)
class Accepted:
    transid: str
    correlationid: str | None


class Intake:
    def __init__(
        self,
        store: Store,
        on_accept: Callable[[], None],
        templates: TemplateRegistry | None = None,
        groups: GroupRegistry | None = None,
        smartlinks: SmartlinkRegistry | None = None,
        public_url: str = "",
        limiter: Limiter | None = None,
        apps: AppRegistry | None = None,
    ) -> None:
        self.store = store
        self.on_accept = on_accept
        self.templates = templates or TemplateRegistry()
        self.groups = groups or GroupRegistry()
        self.smartlinks = smartlinks or SmartlinkRegistry()
        self.public_url = public_url.rstrip("/")
        self.limiter: Limiter = limiter or RateLimiter()
        self.apps = apps or AppRegistry()

    async def accept_v1(self, service: Service, req: V1Request) -> list[Accepted]:
        """Check what depends on the service, commit every message, and only then answer."""
        channel = req.channel
        app_id = self._app(service, req)
        raw = self._templated(service, req) if req.template is not None else req.channel_object
        assert raw is not None  # the schema requires a channel object when no template is named
        content = channel.content(raw, "channels." + ".".join(channel.path), service.senderids)
        if app_id is not None:  # an app channel's content names its app (`appid`), for its connector
            content = ChannelContent(msgspec.structs.replace(content.data, appid=app_id), content.parts)
        if len(req.addresses) > service.tps:
            raise TooManyDestinations(
                f"{len(req.addresses)} addresses, more than this service's tps of {service.tps}"
            )
        policy = None
        if req.policy is not None:
            group = req.policy["group"]
            if self.groups.find(service.id, group) is None:
                raise InvalidParameter(f"contactPolicy.contactPolicyGroup {group!r} is not a known group")
            policy = msgspec.json.encode(req.policy)
        links = self._links(service, req, getattr(content.data, "text", None))
        # Last check before storing, so refused requests spend none of the service's budget.
        if not await self.limiter.take(service.id, service.tps, len(req.addresses)):
            raise RateLimited()
        transids = ids.new_ids(len(req.addresses))
        now = clock.now()
        bodies = [msgspec.json.encode(content.data)] * len(transids)
        parts = [content.parts] * len(transids)
        new_links: list[NewLink] = []
        if links:
            field = "channels." + ".".join(channel.path)
            for i, transid in enumerate(transids):
                text, made = self._shorten(
                    str(getattr(content.data, "text", "")), links, service.id, transid, now
                )
                # The link changes the text's length: check and count it again, as sent.
                own = channel.content(
                    msgspec.json.encode(msgspec.structs.replace(content.data, text=text)),
                    field,
                    service.senderids,
                )
                bodies[i], parts[i] = msgspec.json.encode(own.data), own.parts
                new_links.extend(made)
        messages = [
            NewMessage(
                transid=transid,
                service_id=service.id,
                channel=channel.name,
                address=a.value,
                address_type=a.key,
                content=message_body,
                parts=message_parts,
                correlationid=a.correlationid,
                callback_data=req.callback_data,
                notify_url=req.notify_url,
                priority=req.priority,
                expiry=req.expiry,
                created_at=now,
                policy=policy,
                gtrid=a.gtrid,
            )
            for transid, a, message_body, message_parts in zip(
                transids, req.addresses, bodies, parts, strict=True
            )
        ]
        await self.store.accept(messages, links=new_links)
        METRICS.accepted(messages)
        self.on_accept()
        return [Accepted(t, a.correlationid) for t, a in zip(transids, req.addresses, strict=True)]

    def _app(self, service: Service, req: V1Request) -> str | None:
        """The app a request of an app channel names: one of this service's, serving the channel
        (CONTRACT.md "Apps": 7104 otherwise). None for channels without apps."""
        if not find_spec(req.channel.name).needs_app:
            return None
        app = self.apps.find(req.app_id or "")
        if app is None or app.service_id != service.id or not app.serves(req.channel.name):
            raise InvalidAppId(
                f"appid {req.app_id!r} is not an app of this service serving {req.channel.name}"
            )
        return app.id

    def _links(self, service: Service, req: V1Request, text: object) -> dict[int, float | None]:
        """The smart links the text uses, with their validity: every `{{link_<id>}}` needs an entry in
        `channels.smartlinks`, and every entry must be one of the service's smart links."""
        entries: dict[int, float | None] = {}
        for i, (linkid, validity) in enumerate(req.smartlinks):
            if self.smartlinks.find(service.id, linkid) is None:
                raise InvalidParameter(
                    f"channels.smartlinks[{i}].linkid {linkid} is not a smart link of this service"
                )
            entries[linkid] = validity
        used: dict[int, float | None] = {}
        for name in SMARTLINK.findall(text if isinstance(text, str) else ""):
            if not name.isdigit() or int(name) not in entries:
                raise InvalidParameter(
                    f"{{{{link_{name}}}}} in the text has no matching channels.smartlinks entry"
                )
            used[int(name)] = entries[int(name)]
        return used

    def _shorten(
        self, text: str, links: dict[int, float | None], service_id: str, transid: str, now: float
    ) -> tuple[str, list[NewLink]]:
        """The text with each smart link placeholder replaced by this message's own short link."""
        made: list[NewLink] = []
        for linkid, validity in links.items():
            code = new_code()
            expires = None if validity is None else now + validity * 60
            made.append(NewLink(code, service_id, transid, linkid, expires, now))
            text = text.replace(f"{{{{link_{linkid}}}}}", f"{self.public_url}/l/{code}")
        return text, made

    def _templated(self, service: Service, req: V1Request) -> bytes:
        """The channel object a template makes: its text with the parameters filled in, under whatever
        the request's own channel object says (its `text`, when given, overrides the template's)."""
        assert req.template is not None
        template = self.templates.find(service.id, req.channel.name, req.template)
        if template is None:
            raise InvalidParameter(
                f"message.template {req.template!r} is not a template of this service for {req.channel.name}"
            )
        given: Any = msgspec.json.decode(req.channel_object) if req.channel_object is not None else {}
        if not isinstance(given, dict):
            return req.channel_object or b"{}"  # not an object: the channel's own check reports it
        if req.channel.name == WHATSAPP.name:
            return msgspec.json.encode(self._whatsapp_template(req, template, given))
        text = render(template.text, req.parameters or {}, "message.parameters")
        return msgspec.json.encode(req.channel.fill_text(given, text))

    def _whatsapp_template(self, req: V1Request, template: Template, given: dict[str, Any]) -> dict[str, Any]:
        """`channels["OTT-Messaging"]` for a WhatsApp template send. Of the request's own `wa` object a
        template keeps `identity_key_hash`; a `wa` with a `type` is a message of its own and wins, as a
        channel object's text does over an SMS template's. Every namespace named (by the request or by
        the template's entry) must be the app's (7722)."""
        wa = given.get("wa")
        own: dict[str, Any] = wa if isinstance(wa, dict) else {}
        # `message.namespace`, and `wa.namespace` beside identity_key_hash.
        named = {
            "message.namespace": req.namespace,
            "channels.OTT-Messaging.wa.namespace": own.get("namespace"),
        }
        if own.get("type"):
            self._check_namespaces(req.app_id or "", named)
            return given
        wa_object = self.whatsapp_template(
            req.app_id or "", template, req.parameters or {}, "message.parameters", named
        )
        if isinstance(own.get("identity_key_hash"), str):
            wa_object["identity_key_hash"] = own["identity_key_hash"]
        return {**given, "wa": wa_object}

    def whatsapp_template(
        self,
        app_id: str,
        template: Template,
        values: Mapping[str, object],
        field: str,
        named: Mapping[str, object] | None = None,
    ) -> dict[str, Any]:
        """The `wa` object of a send of WhatsApp `template` filled from `values` (named by `field`) for
        `decode_whatsapp`, once every namespace `named` (where → namespace) and the template's own are
        the app's (7722). The WhatsApp REST API's TEMPLATE (templateId, substitutions) can call it too."""
        self._check_namespaces(
            app_id,
            {**(named or {}), f"the template {template.id!r}'s namespace": template.whatsapp.namespace},
        )
        return sealed_template(whatsapp_message(template, values, field))

    def _check_namespaces(self, app_id: str, named: Mapping[str, object]) -> None:
        app = self.apps.find(app_id)
        if app is None or app.whatsapp is None:
            return  # a sandbox app stands for no WhatsApp account: there is nothing to compare
        for where, namespace in named.items():
            if namespace and namespace != app.whatsapp.namespace:
                raise NamespaceMismatch(
                    f"{where} {namespace!r} is not the namespace of app {app_id!r}'s WhatsApp account"
                )

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
        if (earlier := await self._earlier(service, idempotency_key)) is not None:
            return earlier, True
        if len(req.items) > service.tps:
            raise TooManyDestinations(
                f"{len(req.items)} destinations, more than this service's tps of {service.tps}", field="to"
            )
        if not await self.limiter.take(service.id, service.tps, len(req.items)):
            raise RateLimited()
        items = self._sms_items(service, req)
        transids = ids.new_ids(len(items))
        now = clock.now()
        body = answer(transids, now)
        new_links: list[NewLink] = []
        if req.shorten:
            items = [
                self._shorten_urls(service.id, transid, item, req.track_clicks, now, new_links)
                for transid, item in zip(transids, items, strict=True)
            ]
        messages = [
            NewMessage(
                transid=transid,
                service_id=service.id,
                channel=SMS.name,
                address=item.address,
                address_type=SMS.destination_key,
                content=msgspec.json.encode(item.content),
                parts=item.parts,
                correlationid=item.correlationid,
                callback_data=req.callback_data,
                notify_url=req.callback_url,
                priority=2,
                expiry=req.expiry,
                created_at=now,
            )
            for transid, item in zip(transids, items, strict=True)
        ]
        return await self._commit(service, idempotency_key, body, now, messages, new_links)

    async def _earlier(self, service: Service, idempotency_key: str | None) -> bytes | None:
        """The answer to an earlier request with this Idempotency-Key. A client retrying a request that
        succeeded gets it whatever the rate or the tps are now: a replay sends nothing, so it spends
        nothing. (`accept` checks again, atomically.)"""
        if idempotency_key is None:
            return None
        return await self.store.earlier_answer(service.id, idempotency_key, clock.now())

    async def _commit(
        self,
        service: Service,
        idempotency_key: str | None,
        body: bytes,
        now: float,
        messages: list[NewMessage],
        links: list[NewLink],
    ) -> tuple[bytes, bool]:
        """Store the messages with their answer; the earlier answer instead when a concurrent request
        with the same Idempotency-Key got there first."""
        idempotent = None
        if idempotency_key is not None:
            idempotent = IdempotentAnswer(service.id, idempotency_key, body, now)
        earlier = await self.store.accept(messages, idempotent, links)
        if earlier is not None:
            return earlier, True
        METRICS.accepted(messages)
        self.on_accept()
        return body, False

    async def accept_whatsapp(
        self,
        service: Service,
        req: WhatsAppRequest,
        idempotency_key: str | None,
        answer: Callable[[Sequence[str], float], bytes],
    ) -> tuple[bytes, bool]:
        """Commit a WhatsApp REST API message, as `accept_sms` does (same Idempotency-Key replays),
        stored as v1 stores one: a WhatsAppMessage naming the app `from` resolves to."""
        if (earlier := await self._earlier(service, idempotency_key)) is not None:
            return earlier, True
        app = self._whatsapp_sender(service, req.sender)
        content = req.content or self._rest_template(service, app, req)
        if not await self.limiter.take(service.id, service.tps, 1):
            raise RateLimited()
        (transid,) = ids.new_ids(1)
        now = clock.now()
        body = answer([transid], now)
        message = NewMessage(
            transid=transid,
            service_id=service.id,
            channel=WHATSAPP.name,
            address=req.to,
            address_type="msisdn",
            content=msgspec.json.encode(WhatsAppMessage(appid=app.id, wa=content, rest=req.rest)),
            parts=1,
            correlationid=req.correlationid,
            callback_data=req.callback_data,
            notify_url=req.callback_url,
            priority=2,
            expiry=None,
            created_at=now,
        )
        return await self._commit(service, idempotency_key, body, now, [message], [])

    def _rest_template(self, service: Service, app: App, req: WhatsAppRequest) -> WhatsAppContent:
        """The REST API's TEMPLATE: the service's `[[templates]]` entry `templateId` filled from the
        substitutions, checked as a v1 template send is."""
        template = self.templates.find(service.id, WHATSAPP.name, req.template_id or "")
        if template is None:
            raise InvalidParameter(f"no WhatsApp template {req.template_id!r}", field="templateId")
        wa = self.whatsapp_template(app.id, template, req.substitutions, "substitutions")
        return decode_whatsapp(msgspec.json.encode(wa), "substitutions")

    def _whatsapp_sender(self, service: Service, sender: str) -> App:
        """The app a REST `from` names: one of this service's apps serving WhatsApp, by its id or by
        its [apps.whatsapp] phone_number_id (7104 naming `from` otherwise)."""
        mine = [a for a in self.apps.all() if a.service_id == service.id and a.serves(WHATSAPP.name)]
        for app in mine:
            if app.id == sender or (app.whatsapp is not None and app.whatsapp.phone_number_id == sender):
                return app
        raise InvalidAppId(
            f"{sender!r} is neither a WhatsApp app of this service nor its number's phone_number_id",
            field="from",
        )

    def _shorten_urls(
        self, service_id: str, transid: str, item: SmsItem, track: bool, now: float, made: list[NewLink]
    ) -> SmsItem:
        """Every https URL of the text as a short link of this message's own, valid 180 days."""
        text = item.content.text
        if not isinstance(text, str) or "https://" not in text:
            return item

        def short(m: re.Match[str]) -> str:
            code = new_code()
            made.append(NewLink(code, service_id, transid, 0, now + SHORT_LINK_S, now, m.group(0), track))
            return f"{self.public_url}/l/{code}"

        return item.with_text(HTTPS_URL.sub(short, text))

    def _sms_items(self, service: Service, req: SmsRequest) -> list[SmsItem]:
        if req.template is None:
            return req.items
        template = self.templates.find(service.id, SMS.name, req.template)
        if template is None:
            raise InvalidParameter(f"no template {req.template!r} for this service", field="content")
        return [
            item.with_text(render(template.text, item.substitutions, "substitutions")) for item in req.items
        ]

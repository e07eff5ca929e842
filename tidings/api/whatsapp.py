"""The WhatsApp REST API: `POST /v1/whatsapp/messages` and `GET /v1/whatsapp/messages/{messageId}`.

It answers as the SMS API does (202, 400 naming the field, 401/403, 413, 429, `Idempotency-Key`). The
message is stored as a v1 WhatsApp message would be (`WhatsAppMessage`), with the request's own fields
beside it (`rest`), so the GET answers them exactly as sent. A message without them (sent with v1, or
stored before they were kept) has its REST fields re-derived from the stored `wa` object.
"""

import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from tidings.api.auth import authenticate_sms
from tidings.api.body import read_json
from tidings.api.responses import json_response, plain_error
from tidings.api.sms import idempotency_key, sms_error
from tidings.clock import iso
from tidings.errors import ApiError, InternalError, InvalidJson
from tidings.runtime import Runtime
from tidings.schema import whatsapp_api
from tidings.schema.api_wire import WhatsAppView
from tidings.specs.whatsapp import WHATSAPP
from tidings.store.base import MessageRecord

log = logging.getLogger("tidings.api")

_STATUS = {"Queued": "QUEUED", "Submitted": "SENT", "Delivered": "DELIVERED", "Read": "READ"}


async def send_whatsapp(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        service = authenticate_sms(request.headers, runtime.services)
        key = idempotency_key(request)
        body = await read_json(request, runtime.config.server.max_body_bytes)
        req = whatsapp_api.decode(body)

        def answer(transids: Sequence[str], at: float) -> bytes:
            accepted = {
                "acceptedTime": iso(at),
                "messageId": transids[0],
                "correlationId": req.correlationid or "",
            }
            return msgspec.json.encode(accepted)

        text, replayed = await runtime.intake.accept_whatsapp(service, req, key, answer)
    except ApiError as exc:
        return sms_error(exc)
    except ClientDisconnect:
        return sms_error(InvalidJson("the body ended early"))
    except Exception:
        log.exception("WhatsApp API send failed")
        return sms_error(InternalError())
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(text, 202, headers, media_type="application/json")


async def get_whatsapp(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        service = authenticate_sms(request.headers, runtime.services)
    except ApiError as exc:
        return sms_error(exc)
    message_id = request.path_params["message_id"]
    record = await runtime.store.get_message(service.id, message_id)
    if record is None or record.channel != WHATSAPP.name:
        return plain_error(404, "404", f"no message {message_id} for this service")
    app = runtime.apps.find(str(record.content.get("appid", "")))
    sender = app.whatsapp.phone_number_id if app is not None and app.whatsapp is not None else None
    # Encoded through the Struct the API description names (a stored field of another shape fails here).
    return json_response(msgspec.convert(render_whatsapp(record, sender), WhatsAppView))


def render_whatsapp(m: MessageRecord, sender: str | None) -> dict[str, Any]:
    """The REST view of a stored WhatsApp message: the request's fields as sent, plus its status."""
    rest = m.content.get("rest")
    if not isinstance(rest, dict):
        return _derived(m, sender)
    view: dict[str, Any] = {
        **rest,
        "messageId": m.transid,
        "acceptedTime": iso(m.created_at),
        "status": _STATUS.get(m.status, "FAILED"),
        "statusTime": iso(m.updated_at),
    }
    if view["status"] == "FAILED":
        view["error"] = {"code": m.code, "message": m.description}
    return view


def _derived(m: MessageRecord, sender: str | None) -> dict[str, Any]:
    """The REST view of a message whose request fields were not kept (v1, or older rows), re-derived
    from its `wa` object. `from` is the app's phone_number_id when it has a WhatsApp number, else the app
    id."""
    wa: dict[str, Any] = m.content.get("wa") or {}
    view: dict[str, Any] = {
        "messageId": m.transid,
        "acceptedTime": iso(m.created_at),
        "statusTime": iso(m.updated_at),
        "from": sender or m.content.get("appid", ""),
        "to": m.address,
        "correlationId": m.correlationid or "",
        **_fields(wa),
        "status": _STATUS.get(m.status, "FAILED"),
    }
    if m.callback_data is not None:
        view["callbackData"] = m.callback_data
    if m.notify_url:
        view["callbackUrl"] = m.notify_url
    if view["status"] == "FAILED":
        view["error"] = {"code": m.code, "message": m.description}
    return view


def _fields(wa: dict[str, Any]) -> dict[str, Any]:
    kind = str(wa.get("type", ""))
    if kind == "text":
        text = wa.get("text") or {}
        return {
            "contentType": "TEXT",
            "content": text.get("body", ""),
            "previewUrl": bool(text.get("preview_url")),
        }
    if kind in ("image", "audio", "video", "document", "sticker"):
        return {"contentType": kind.upper(), **_media(wa.get("media") or {})}
    if kind == "location":
        return {"contentType": "LOCATION", **(wa.get("location") or {})}
    if kind == "contacts":
        return {"contentType": "CONTACTS", "contacts": [_contact(c) for c in wa.get("contacts") or []]}
    if kind == "interactive":
        return _buttons(wa.get("interactive") or {})
    return {"contentType": kind.upper()}  # sent with v1 (a reaction): only its type has a REST name


def _media(media: dict[str, Any]) -> dict[str, Any]:
    names = {
        "link": "url",
        "id": "url",
        "mime_type": "mimeType",
        "caption": "caption",
        "filename": "fileName",
    }
    return {names[k]: v for k, v in media.items() if k in names}


def _buttons(i: dict[str, Any]) -> dict[str, Any]:
    """Reply buttons read back as a TEXT with quickReplies; a media header as the mediaHeader (a list
    sent with v1 has no REST form: INTERACTIVE)."""
    if i.get("type") != "button":
        return {"contentType": "INTERACTIVE"}
    view: dict[str, Any] = {
        "contentType": "TEXT",
        "content": i.get("body", ""),
        "quickReplies": [{"buttonText": b["title"], "payload": b["id"]} for b in i.get("buttons", [])],
    }
    header = i.get("header")
    if header:
        if header["type"] == "text":
            view["mediaHeader"] = {"contentType": "TEXT", "text": header.get("text", "")}
        else:
            media = _media(header.get("media") or {})
            view["mediaHeader"] = {"contentType": str(header["type"]).upper(), **media}
    return view


def _contact(c: dict[str, Any]) -> dict[str, Any]:
    name = c.get("name") or {}
    org = c.get("org") or {}
    out = {
        "formattedName": name.get("formatted_name"),
        "namePrefix": name.get("prefix"),
        "firstName": name.get("first_name"),
        "middleName": name.get("middle_name"),
        "lastName": name.get("last_name"),
        "nameSuffix": name.get("suffix"),
        "birthday": c.get("birthday"),
        "company": org.get("company"),
        "department": org.get("department"),
        "title": org.get("title"),
        "phones": [
            {"type": p.get("type"), "number": p.get("phone"), "whatsAppId": p.get("wa_id")}
            for p in c.get("phones", [])
        ],
        "addresses": [
            {**{k: v for k, v in a.items() if k != "country_code"}, "countryCode": a.get("country_code")}
            for a in c.get("addresses", [])
        ],
        "emails": [{"type": e.get("type"), "address": e.get("email")} for e in c.get("emails", [])],
        "urls": [{"type": u.get("type"), "address": u.get("url")} for u in c.get("urls", [])],
    }
    return {k: v for k, v in out.items() if v is not None}

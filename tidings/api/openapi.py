"""`GET /openapi.json`: the OpenAPI 3.1 description of every public route (the console's own, under
`/console`, are not part of the API).

The schemas are not written here: request bodies come from the msgspec Structs the handlers decode
with, answers from the Structs they encode with (`tidings.schema.api_wire`), and the admin API's bodies
from the config file's tables (`tidings.config.schema`), all through `msgspec.json.schema_components`.
This module only says which route takes and answers which Struct, with which statuses and credentials.
The document is built once per process, on first request.
"""

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tidings import __version__
from tidings.api import admin
from tidings.api.consent import ConsentBody
from tidings.api.devices import DeviceBody, ReceiptBody, TokenBody
from tidings.api.listing import MessagePage
from tidings.apps import SECRET_KEYS
from tidings.catalogue import KINDS
from tidings.schema import api_wire as w
from tidings.schema import sms_api, v1, v2, whatsapp_api

REF = "#/components/schemas/{name}"
JSON = "application/json"
Schema = dict[str, Any]

# Credentials, as the contract names them.
Security = list[dict[str, list[str]]]
SERVICE: Security = [{"serviceKey": []}, {"serviceJwt": []}]
SERVICE_OR_AUTHORIZATION: Security = [*SERVICE, {"authorizationKey": []}]
ADMIN: Security = [{"adminToken": []}]
USER: Security = [{"userToken": []}]
PUBLIC: Security = []

SECURITY_SCHEMES: Schema = {
    "serviceKey": {"type": "apiKey", "in": "header", "name": "key", "description": "The service key."},
    "serviceJwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "HS256, signed with the Base64-decoded service secret; `iss` the service id or key, "
        "`iat` at most 60 minutes old. When a key is sent too, the JWT decides.",
    },
    "authorizationKey": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The service key as the whole header, or `Bearer <key>` (SMS, WhatsApp, consent and "
        "devices APIs).",
    },
    "adminToken": {"type": "http", "scheme": "bearer", "description": "`[server] admin_token`."},
    "userToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A user token: HS256 `{sub: userid, aud: appid, exp}` signed with the app's decoded "
        "client_secret.",
    },
}


@dataclass(frozen=True)
class Answer:
    """One documented status: its body (a Struct, a schema, or none) and what it means."""

    description: str
    body: Any = None  # a type for schema_components, a Schema (with `media`), or None: no body
    media: str = JSON
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # the Starlette route's path, converters included
    summary: str
    tag: str
    security: Security
    answers: Mapping[int, Answer]
    body: Any = None  # the request body's type (or a Schema)
    body_media: str = JSON
    query: tuple[tuple[str, bool, str], ...] = ()  # (name, required, description)
    headers: tuple[tuple[str, str], ...] = ()  # (name, description), all optional
    example: Any = None  # a request body that works on the demo configuration (the docs' samples)


LISTING_QUERY = (
    ("channel", False, "A channel name."),
    ("status", False, "A status word (Delivered, Failed, …), any case."),
    ("destination", False, "The address."),
    ("correlationid", False, "The correlation id."),
    ("from", False, "ISO 8601 or epoch seconds, inclusive."),
    ("to", False, "ISO 8601 or epoch seconds, exclusive."),
    ("q", False, "A piece of the content."),
    ("limit", False, "1 to 200; 50 when absent."),
    ("cursor", False, "The previous page's `nextCursor`."),
)
MSISDN = "+447700900123"
EXAMPLES: dict[str, Any] = {
    "v1": {
        "deliverychannel": "sms",
        "destination": [{"msisdn": [MSISDN]}],
        "channels": {"sms": {"text": "Hello from Tidings", "senderid": "CONNCT"}},
        "correlationid": "c-1",
    },
    "sms": {"from": "CONNCT", "to": MSISDN, "content": "Hello from Tidings", "contentType": "text"},
    "whatsapp": {"from": "app-demo", "to": MSISDN, "contentType": "TEXT", "content": "Hello from Tidings"},
    "v2": {
        "channel": "sms",
        "from": "CONNCT",
        "to": [{"msisdn": [MSISDN], "substitutions": {"name": "Ann"}, "correlationId": "c-1"}],
        "content": {"type": "text", "text": "Hi {{name}}"},
    },
    "consent": {"address": MSISDN, "channel": "text", "consent": True, "reason": "web form"},
    "device": {"userid": "u1", "customerid": "c1", "platform": "android", "token": "fcm-registration-token"},
    "token": {"expiresIn": 3600},
    "receipt": {"transid": "01a21d9b-858f-7674-a358-6812cba2b5c7", "status": "Read"},
    "webhook": {"object": "whatsapp_business_account", "entry": []},
}
ADMIN_EXAMPLES: dict[str, Any] = {
    "services": {"id": "svc-shop", "name": "shop", "key": "shop-key", "senderids": ["SHOP"], "tps": 50},
    "templates": {"service": "demo", "channel": "sms", "id": "welcome", "text": "Welcome, {{name}}"},
    "smartlinks": {"service": "demo", "linkid": 7, "url": "https://shop.example/app"},
    "groups": {"service": "demo", "id": "offers", "kind": "opt-in", "caps": {"text": {"day": 2}}},
    "apps": {"id": "app-shop", "service": "demo"},
}
PATCH_EXAMPLES: dict[str, Any] = {
    "services": {"tps": 60},
    "templates": {"text": "Welcome back, {{name}}"},
    "smartlinks": {"url": "https://shop.example/app2"},
    "groups": {"kind": "opt-out"},
    "apps": {"client_secret": "c2VjcmV0"},
}


def _err(description: str) -> Answer:
    return Answer(description, w.ApiErrorBody)


CREDENTIALS = {
    401: _err("No credentials (code 7002), or a key or JWT that is not valid (7001)."),
    403: _err("Wrong credentials (7001) or an inactive service (7007)."),
}
SEND_REFUSALS = {
    400: _err(
        "A refused request: 7000 not JSON, 7003 a missing field, 7004 an invalid one (named in "
        "`message`), 7009 too many addresses, 7104 an app that is not the service's."
    ),
    **CREDENTIALS,
    413: _err("The body is over `[server] max_body_bytes` (7022)."),
    429: Answer("The service's rate budget is spent (7020).", w.ApiErrorBody, headers=("Retry-After",)),
}
NOT_HTTP = _err("Not a valid HTTP request (refused by the HTTP parser, code 400).")
NOT_FOUND = {404: _err("Not a message of the caller's service.")}
IDEMPOTENCY = (
    ("Idempotency-Key", "At most 64 characters: a repeat within 24 hours answers the first answer."),
)
ADMIN_ERRORS = {
    401: _err("No admin token, or a wrong one."),
    403: _err("The admin API is off: no `[server] admin_token`."),
}


def _operations() -> list[Op]:
    v1_answer = {"oneOf": [w.V1Accepted, w.V1Refusal]}
    ops = [
        Op(
            "POST",
            path,
            "Send (Messaging API v1)",
            "v1",
            SERVICE,
            {
                200: Answer(
                    "Accepted (one element per address), or refused (one object with code 70xx); "
                    "either way HTTP 200.",
                    v1_answer,
                ),
                413: Answer("The body is over `[server] max_body_bytes` (7022).", w.V1Refusal),
            },
            body=v1.Body | list[v1.Body],
            example=EXAMPLES["v1"],
        )
        for path in ("/resources/v1/messaging", "/resources/v1/messaging/")
    ]
    ops += [
        Op(
            "GET",
            "/v1/messages/{transid}",
            "A message, its status history and notifications",
            "v1",
            SERVICE,
            {200: Answer("The message.", w.MessageView), **CREDENTIALS, **NOT_FOUND},
        ),
        Op(
            "GET",
            "/v1/messages",
            "The service's messages, newest first, a page at a time",
            "v1",
            SERVICE,
            {
                200: Answer(
                    "A page; `nextCursor` fetches the next (older) one, null on the last.", MessagePage
                ),
                400: _err("A parameter that is not valid (7004)."),
                **CREDENTIALS,
            },
            query=LISTING_QUERY,
        ),
        Op(
            "POST",
            "/v1/sms/messages",
            "Send an SMS (SMS API)",
            "sms",
            SERVICE_OR_AUTHORIZATION,
            {202: Answer("Accepted.", w.SmsAccepted, headers=("Idempotent-Replayed",)), **SEND_REFUSALS},
            body=sms_api.Body,
            example=EXAMPLES["sms"],
            headers=IDEMPOTENCY,
        ),
        Op(
            "GET",
            "/v1/sms/messages/{message_id}",
            "An SMS sent with the SMS API",
            "sms",
            SERVICE_OR_AUTHORIZATION,
            {200: Answer("The message.", w.SmsView), **CREDENTIALS, **NOT_FOUND},
        ),
        Op(
            "POST",
            "/v1/whatsapp/messages",
            "Send a WhatsApp message (WhatsApp REST API)",
            "whatsapp",
            SERVICE_OR_AUTHORIZATION,
            {202: Answer("Accepted.", w.WhatsAppAccepted, headers=("Idempotent-Replayed",)), **SEND_REFUSALS},
            body=whatsapp_api.Body,
            example=EXAMPLES["whatsapp"],
            headers=IDEMPOTENCY,
        ),
        Op(
            "GET",
            "/v1/whatsapp/messages/{message_id}",
            "A WhatsApp message",
            "whatsapp",
            SERVICE_OR_AUTHORIZATION,
            {200: Answer("The message.", w.WhatsAppView), **CREDENTIALS, **NOT_FOUND},
        ),
        Op(
            "POST",
            "/v2/messages",
            "Send (Messaging API v2)",
            "v2",
            SERVICE,
            {
                201: Answer("Accepted.", w.V2Accepted, headers=("Idempotent-Replayed",)),
                **SEND_REFUSALS,
                401: Answer("Missing or wrong credentials (no body)."),
                403: _err("An inactive service (7007)."),
            },
            body=v2.Body,
            example=EXAMPLES["v2"],
            headers=IDEMPOTENCY,
        ),
        Op(
            "GET",
            "/v2/messages/{message_id}",
            "A message sent with v2",
            "v2",
            SERVICE,
            {
                200: Answer("The message and its status history.", w.V2View),
                401: Answer("Missing or wrong credentials (no body)."),
                403: _err("An inactive service (7007)."),
                **NOT_FOUND,
            },
        ),
    ]
    group = "/v1/groups/{group_id}/members"
    group_errors = {
        400: _err("A field missing (7003) or invalid (7004), named in `message`."),
        **CREDENTIALS,
        404: _err("A group the service does not have (9005), or no record (404)."),
        413: _err("The body is over `[server] max_body_bytes` (7022)."),
    }
    address_query = (
        ("address", True, "The address."),
        ("channel", False, "A channel category; `text` when absent."),
    )
    ops += [
        Op(
            "POST",
            group,
            "Record consent",
            "consent",
            SERVICE_OR_AUTHORIZATION,
            {204: Answer("Recorded."), **group_errors},
            body=ConsentBody,
            example=EXAMPLES["consent"],
        ),
        Op(
            "GET",
            group,
            "A consent record",
            "consent",
            SERVICE_OR_AUTHORIZATION,
            {200: Answer("The record.", w.ConsentRecordView), **group_errors},
            query=address_query,
        ),
        Op(
            "DELETE",
            group,
            "Remove consent records",
            "consent",
            SERVICE_OR_AUTHORIZATION,
            {204: Answer("Removed (every channel when none is given)."), **group_errors},
            query=(("address", True, "The address."), ("channel", False, "A channel category.")),
        ),
    ]
    no_app = {404: _err("Not an app of this service (7104).")}
    device_errors = {
        400: _err("A field missing (7003) or invalid (7004), named in `message`."),
        **CREDENTIALS,
        **no_app,
        413: _err("The body is over `[server] max_body_bytes` (7022)."),
    }
    ops += [
        Op(
            "POST",
            "/v1/apps/{app_id}/devices",
            "Register a device",
            "devices",
            SERVICE_OR_AUTHORIZATION,
            {
                201: Answer("Registered (or updated, for a token already registered).", w.DeviceView),
                **device_errors,
            },
            body=DeviceBody,
            example=EXAMPLES["device"],
        ),
        Op(
            "GET",
            "/v1/apps/{app_id}/devices",
            "An app's devices",
            "devices",
            SERVICE_OR_AUTHORIZATION,
            {200: Answer("The devices.", w.DeviceList), **CREDENTIALS, **no_app},
            query=(("userid", False, "Only this user's devices."),),
        ),
        Op(
            "DELETE",
            "/v1/apps/{app_id}/devices/{device_id}",
            "Remove a device",
            "devices",
            SERVICE_OR_AUTHORIZATION,
            {
                204: Answer("Removed."),
                **CREDENTIALS,
                404: _err("Not an app of this service (7104), or no such device."),
            },
        ),
        Op(
            "POST",
            "/v1/apps/{app_id}/users/{user_id}/token",
            "Mint a user token",
            "devices",
            SERVICE_OR_AUTHORIZATION,
            {
                201: Answer("The token.", w.UserToken),
                **device_errors,
                409: _err("The app has no client_secret to sign with (7104)."),
            },
            body=TokenBody,
            example=EXAMPLES["token"],
        ),
        Op(
            "POST",
            "/v1/apps/{app_id}/receipts",
            "Report a push message delivered or read",
            "devices",
            USER,
            {
                204: Answer("Recorded; Delivered 7500 / Read 7502 notified once each."),
                400: _err("A field missing (7003) or invalid (7004)."),
                401: _err("No user token (7002)."),
                403: _err("A token not of this app, expired, or of another user (7001)."),
                404: _err("Not a push message of this app."),
                413: _err("The body is over `[server] max_body_bytes` (7022)."),
            },
            body=ReceiptBody,
            example=EXAMPLES["receipt"],
        ),
    ]
    text = {"type": "string"}
    ops += [
        Op(
            "GET",
            "/webhooks/{app_id}",
            "Meta's subscription check",
            "webhooks",
            PUBLIC,
            {
                200: Answer("The challenge.", text, "text/plain"),
                403: _err("Not this app's verify token."),
                404: _err("No such app."),
                405: _err("An RCS agent's webhook takes POSTs only."),
            },
            query=(
                ("hub.mode", False, "`subscribe`"),
                ("hub.verify_token", False, "The app's verify_token."),
                ("hub.challenge", False, "Echoed back."),
            ),
        ),
        Op(
            "POST",
            "/webhooks/{app_id}",
            "A provider's signed webhook (Meta, Google RBM)",
            "webhooks",
            PUBLIC,
            {
                200: Answer("Stored; acknowledged.", text, "text/plain"),
                400: _err("An unreadable body."),
                403: _err("A bad or missing signature: nothing is stored."),
                404: _err("No such app."),
                413: _err("The body is over `[server] max_body_bytes` (7022)."),
            },
            body={"type": "object"},
            example=EXAMPLES["webhook"],
            headers=(
                ("X-Hub-Signature-256", "Meta: sha256=<hex HMAC-SHA256 of the body under the app_secret>."),
                ("X-Goog-Signature", "RBM: Base64 HMAC-SHA512 under the client_token."),
            ),
        ),
        *(
            Op(
                method,
                "/l/{code}",
                "Follow a short link" + (" (not counted)" if method == "HEAD" else ""),
                "links",
                PUBLIC,
                {
                    302: Answer("To the link's target.", headers=("Location",)),
                    404: _err("No such link."),
                    410: _err("A shortened URL past its 180 days."),
                },
            )
            for method in ("GET", "HEAD")
        ),
        *(
            Op(
                method,
                "/t/o/{code}.gif",
                "Email open pixel",
                "tracking",
                PUBLIC,
                {
                    200: Answer(
                        "A 1x1 transparent GIF.",
                        {"type": "string", "contentMediaType": "image/gif"},
                        "image/gif",
                    ),
                    404: _err("No such code."),
                },
            )
            for method in ("GET", "HEAD")
        ),
        *(
            Op(
                method,
                "/t/c/{code}",
                "Email tracked click",
                "tracking",
                PUBLIC,
                {
                    302: Answer("To the URL recorded at send time.", headers=("Location",)),
                    404: _err("No such code."),
                },
            )
            for method in ("GET", "HEAD")
        ),
        Op(
            "GET",
            "/t/u/{code}",
            "Email unsubscribe page (its button POSTs)",
            "tracking",
            PUBLIC,
            {200: Answer("A page for people.", text, "text/html"), 404: _err("No such code.")},
        ),
        Op(
            "POST",
            "/t/u/{code}",
            "RFC 8058 one-click unsubscribe",
            "tracking",
            PUBLIC,
            {
                200: Answer("Unsubscribed.", text, "text/html"),
                400: _err("No `List-Unsubscribe=One-Click` in the form (7003)."),
                404: _err("No such code."),
                413: _err("The form is too large."),
            },
            body={
                "type": "object",
                "properties": {"List-Unsubscribe": {"type": "string", "const": "One-Click"}},
            },
            body_media="application/x-www-form-urlencoded",
            example={"List-Unsubscribe": "One-Click"},
        ),
        Op(
            "GET",
            "/healthz",
            "Liveness",
            "health",
            PUBLIC,
            {200: Answer("Accepting requests.", w.Health), 503: _err("The store is not answering.")},
        ),
        Op(
            "GET",
            "/readyz",
            "Readiness",
            "health",
            PUBLIC,
            {
                200: Answer("The store (and Redis, when configured) answer.", w.Health),
                503: Answer("Something this process depends on does not answer.", w.NotReady),
            },
        ),
        Op(
            "GET",
            "/metrics",
            "Prometheus metrics",
            "health",
            PUBLIC,
            {200: Answer("The Prometheus text format.", text, "text/plain")},
        ),
        Op(
            "GET",
            "/openapi.json",
            "This document",
            "health",
            PUBLIC,
            {200: Answer("The OpenAPI 3.1 description.", {"type": "object"})},
        ),
    ]
    return ops + _admin_operations()


def _admin_operations() -> list[Op]:
    ops = [
        Op(
            "GET",
            "/admin/v1/gone-addresses",
            "Addresses providers said are gone",
            "admin",
            ADMIN,
            {200: Answer("Newest first.", w.GoneAddressList), **ADMIN_ERRORS},
            query=(("service", False, "Only this service's (id or name)."),),
        ),
        Op(
            "DELETE",
            "/admin/v1/gone-addresses/{service}/{channel}/{address:path}",
            "Forget a gone address",
            "admin",
            ADMIN,
            {204: Answer("Forgotten."), **ADMIN_ERRORS, 404: _err("Not remembered as gone.")},
        ),
    ]
    refused = {
        400: _err(
            "A body that is not JSON or not an object, or keys the catalogue refuses (`problems` names each)."
        ),
        **ADMIN_ERRORS,
        413: _err("The body is over `[server] max_body_bytes`."),
    }
    for prefix, kind in admin.PREFIXES.items():
        struct = KINDS[kind].struct
        shown = {"$ref": f"{struct.__name__}Shown"}
        listing = {
            "type": "object",
            "properties": {kind: {"type": "array", "items": shown}},
            "required": [kind],
        }
        collection, entry = f"/admin/v1/{prefix}", f"/admin/v1/{prefix}/{{name:path}}"
        ops += [
            Op(
                "GET",
                collection,
                f"List {prefix}",
                "admin",
                ADMIN,
                {200: Answer("The entries.", listing), **ADMIN_ERRORS},
                query=(("service", False, "Only this service's (id or name)."),),
            ),
            Op(
                "POST",
                collection,
                f"Add to {prefix}",
                "admin",
                ADMIN,
                {201: Answer("Added.", shown, headers=("Location",)), **refused, 409: _err("It exists.")},
                body=struct,
                example=ADMIN_EXAMPLES[kind],
            ),
            Op(
                "GET",
                entry,
                f"One of {prefix}",
                "admin",
                ADMIN,
                {200: Answer("The entry.", shown), **ADMIN_ERRORS, 404: _err("No such entry.")},
            ),
            Op(
                "PUT",
                entry,
                f"Replace one of {prefix}",
                "admin",
                ADMIN,
                {
                    200: Answer("The entry as replaced.", shown),
                    **refused,
                    404: _err("No such entry."),
                    409: _err("Changed meanwhile by another process."),
                },
                body=struct,
                example=ADMIN_EXAMPLES[kind],
            ),
            Op(
                "PATCH",
                entry,
                f"Change keys of one of {prefix}",
                "admin",
                ADMIN,
                {
                    200: Answer("The entry as changed.", shown),
                    **refused,
                    404: _err("No such entry."),
                    409: _err("Changed meanwhile by another process."),
                },
                body={"$ref": f"{struct.__name__}Patch"},
                example=PATCH_EXAMPLES[kind],
            ),
            Op(
                "DELETE",
                entry,
                f"Remove one of {prefix}",
                "admin",
                ADMIN,
                {
                    204: Answer("Removed."),
                    **ADMIN_ERRORS,
                    404: _err("No such entry."),
                    409: _err("A service that still owns entries, or changed meanwhile."),
                },
            ),
        ]
    return ops


def openapi_path(route_path: str) -> str:
    """A Starlette path as OpenAPI writes it: `{name:path}` → `{name}`."""
    out, rest = [], route_path
    while "{" in rest:
        head, _, tail = rest.partition("{")
        name, _, rest = tail.partition("}")
        out.append(f"{head}{{{name.split(':')[0]}}}")
    return "".join(out) + rest


def _structs(ops: Iterable[Op]) -> list[Any]:
    """Every type named by an operation, in a stable order, for one schema_components call (so two
    Structs of one name get the same qualified names everywhere)."""
    found: list[Any] = [*(KINDS[kind].struct for kind in admin.PREFIXES.values())]
    for op in ops:
        for t in _types((op.body, *(a.body for a in op.answers.values()))):
            if t not in found:
                found.append(t)
    return found


def _types(node: Any) -> list[Any]:
    """The types in `node`: itself, or those a hand-made schema holds among its values."""
    if isinstance(node, dict):
        return [t for v in node.values() for t in _types(v)]
    if isinstance(node, list | tuple):
        return [t for v in node for t in _types(v)]
    return [] if node is None or isinstance(node, str | int | float | bool) else [node]


def _variants(components: dict[str, Schema], root: str, suffix: str, *, shown: bool) -> None:
    """Add `<root><suffix>` (and of every component it reaches) to `components`: for `Shown`, an admin
    entry as answered (secrets left out, `origin` added); for `Patch`, a body where every key is
    optional. Derived from the generated components, never written by hand."""
    todo, done = [root], set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        schema = copy.deepcopy(components[name])
        for ref in _refs(schema):
            todo.append(ref["$ref"].rsplit("/", 1)[1])
            ref["$ref"] += suffix
        props = schema.get("properties", {})
        if shown:
            for secret in SECRET_KEYS:
                props.pop(secret, None)
            schema["required"] = [k for k in schema.get("required", []) if k not in SECRET_KEYS]
            if name == root:
                props["origin"] = {"type": "string", "enum": ["config", "admin", "demo"]}
                schema["required"].append("origin")
        else:
            schema.pop("required", None)
        if not schema.get("required"):
            schema.pop("required", None)
        components[name + suffix] = schema


def _refs(node: Any) -> list[dict[str, str]]:
    if isinstance(node, dict):
        found = [node] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _schema(t: Any, refs: Mapping[Any, Schema]) -> Any:
    """A body's schema: a type's reference, or a hand-made schema whose types become references and
    whose bare `$ref` names become component references."""
    if isinstance(t, dict):
        out = {k: _schema(v, refs) for k, v in t.items()}
        if isinstance(out.get("$ref"), str) and not out["$ref"].startswith("#"):
            out["$ref"] = REF.format(name=out["$ref"])
        return out
    if isinstance(t, list):
        return [_schema(v, refs) for v in t]
    if t is None or isinstance(t, str | int | float | bool):
        return t
    return refs[t]


def _operation(op: Op, refs: Mapping[Any, Schema]) -> Schema:
    params: list[Schema] = []
    path = openapi_path(op.path)
    for name in (p.partition("}")[0] for p in path.split("{")[1:]):
        params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    for name, required, description in op.query:
        params.append(
            {
                "name": name,
                "in": "query",
                "required": required,
                "description": description,
                "schema": {"type": "string"},
            }
        )
    for name, description in op.headers:
        params.append(
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": description,
                "schema": {"type": "string"},
            }
        )
    responses: Schema = {}
    # Any request can be bytes the HTTP parser refuses (a header name with a space, say): 400 in JSON.
    answers = {400: NOT_HTTP, **op.answers}
    for status, answer in sorted(answers.items()):
        response: Schema = {"description": answer.description}
        if answer.body is not None and op.method != "HEAD":  # HEAD answers headers only
            response["content"] = {answer.media: {"schema": _schema(answer.body, refs)}}
        if answer.headers:
            response["headers"] = {h: {"schema": {"type": "string"}} for h in answer.headers}
        if links := _links(op.method, path, status):
            response["links"] = links
        responses[str(status)] = response
    out: Schema = {
        "operationId": _operation_id(op.method, path),
        "summary": op.summary,
        "tags": [op.tag],
        "security": op.security,
        "responses": responses,
    }
    if params:
        out["parameters"] = params
    if op.body is not None:
        media: Schema = {"schema": _schema(op.body, refs)}
        if op.example is not None:
            media["example"] = op.example
        out["requestBody"] = {"required": True, "content": {op.body_media: media}}
    return out


def _link(method: str, path: str, **parameters: str) -> Schema:
    return {"operationId": _operation_id(method, path), "parameters": parameters}


def _links(method: str, path: str, status: int) -> Schema:
    """OpenAPI links from an answer to the operations that take what it names: a client (and
    schemathesis' stateful run) reads a message it sent, removes a device it added, edits an entry."""
    message = "/v1/messages/{transid}"
    first = "$response.body#/messageId"
    table: dict[tuple[str, str, int], Schema] = {
        ("POST", "/resources/v1/messaging", 200): {
            "GetMessage": _link("GET", message, transid="$response.body#/response/0/transid")
        },
        ("POST", "/v1/sms/messages", 202): {
            "GetSms": _link("GET", "/v1/sms/messages/{message_id}", message_id=first),
            "GetMessage": _link("GET", message, transid=first),
        },
        ("POST", "/v1/whatsapp/messages", 202): {
            "GetWhatsApp": _link("GET", "/v1/whatsapp/messages/{message_id}", message_id=first),
            "GetMessage": _link("GET", message, transid=first),
        },
        ("POST", "/v2/messages", 201): {
            "GetV2": _link("GET", "/v2/messages/{message_id}", message_id=first),
            "GetMessage": _link("GET", message, transid=first),
        },
        ("POST", "/v1/apps/{app_id}/devices", 201): {
            "RemoveDevice": _link(
                "DELETE",
                "/v1/apps/{app_id}/devices/{device_id}",
                app_id="$request.path.app_id",
                device_id="$response.body#/deviceId",
            )
        },
    }
    for prefix, kind in admin.PREFIXES.items():
        if KINDS[kind].keys == ("id",):  # named by one field of the entry: services and apps
            entry = f"/admin/v1/{prefix}/{{name}}"
            table["POST", f"/admin/v1/{prefix}", 201] = {
                f"{verb.title()}Entry": _link(verb, entry, name="$response.body#/id")
                for verb in ("GET", "PATCH", "DELETE")
            }
    return table.get((method, path, status), {})


def _any_object(t: Any) -> Schema:
    """`object` (a Struct field typed `dict[str, object]`) is any JSON value, as `Any` is."""
    if t is object:
        return {"description": "Any JSON value."}  # msgspec wants a schema that is not empty
    raise NotImplementedError(t)


def _operation_id(method: str, path: str) -> str:
    words = "".join(c if c.isalnum() else "_" for c in path).strip("_")
    return f"{method.lower()}_{words}" + ("_slash" if path.endswith("/") else "")


@cache
def document() -> bytes:
    """The whole document, encoded once per process."""
    ops = _operations()
    types = _structs(ops)
    schemas, components = msgspec.json.schema_components(types, schema_hook=_any_object, ref_template=REF)
    refs = dict(zip(types, schemas, strict=True))
    for kind in admin.PREFIXES.values():
        name = refs[KINDS[kind].struct]["$ref"].rsplit("/", 1)[1]
        assert name == KINDS[kind].struct.__name__, f"{name}: the admin operations name it by its class"
        _variants(components, name, "Shown", shown=True)
        _variants(components, name, "Patch", shown=False)
    paths: dict[str, Schema] = {}
    for op in ops:
        paths.setdefault(openapi_path(op.path), {})[op.method.lower()] = _operation(op, refs)
    doc = {
        "openapi": "3.1.0",
        "info": {
            "title": "Tidings",
            "version": __version__,
            "description": "A gateway speaking the Webex Connect Messaging API. Errors outside v1's envelope "
            "are `{code, message, description?}`; v1 answers HTTP 200 with `{response: …}` either way.",
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }
    return msgspec.json.encode(doc)


async def openapi_json(request: Request) -> Response:
    return Response(document(), media_type=JSON)

"""Devices and users of an app (CONTRACT.md "Devices and users"): `/v1/apps/{appid}/…`.

- `POST devices` registers a device (a second registration of the same token updates it), `GET devices
  ?userid=` lists, `DELETE devices/{deviceId}` removes. Service key or JWT of the app's service, as the
  SMS API authenticates; another service's app is 404, as an unknown one.
- `POST users/{userid}/token` mints a user token: an HS256 JWT {sub, aud, iat, exp} signed with the app's
  decoded client_secret.
- `POST receipts` takes a user token and `{transid, status: Delivered|Read}`: the app says it showed or
  opened a push message, and the message moves forward (Delivered 7500, Read 7502), each notified once,
  in order (a Read before any Delivered reports Delivered first).
Errors are the SMS API's shape: 400 with 7003/7004 naming the field, 401/403 for credentials.
"""

import dataclasses
import time
from typing import TypeVar

import jwt
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tidings import clock
from tidings.api.auth import authenticate_sms, bearer
from tidings.api.body import read_json
from tidings.api.responses import json_response, plain_error
from tidings.api.sms import sms_error
from tidings.apps import App
from tidings.channels.push.addresses import endpoint_problem
from tidings.dispatch.worker import notification_for
from tidings.errors import ApiError, AuthFailed, CredentialsMissing, InvalidParameter, MandatoryMissing
from tidings.runtime import Runtime
from tidings.schema.api_wire import DeviceList, DeviceView, UserToken
from tidings.schema.common import typed_error
from tidings.services import Service
from tidings.statuses import DELIVERED, READ, Outcome
from tidings.store.base import Advance, Device, OutgoingNotification, ReceiptTarget

T = TypeVar("T")

PLATFORM_PROVIDERS = {"android": "fcm", "ios": "apns", "web": "webpush", "windows": "wns"}
PROVIDERS = frozenset(PLATFORM_PROVIDERS.values())
# FCM tokens serve iOS apps too (FCM forwards to APNs).
SERVES = {"android": {"fcm"}, "ios": {"apns", "fcm"}, "web": {"webpush"}, "windows": {"wns"}}
USER_TOKEN_TTL_S = 24 * 3600
FIELD_MAX_CHARS = 256
TOKEN_MAX_CHARS = 4096


class Keys(msgspec.Struct):
    p256dh: str | None = None
    auth: str | None = None


class Subscription(msgspec.Struct):
    endpoint: str | None = None
    keys: Keys | None = None


class DeviceBody(msgspec.Struct):
    userid: str | None = None
    customerid: str | None = None
    platform: str | None = None
    provider: str | None = None
    token: str | None = None
    subscription: Subscription | None = None


class ReceiptBody(msgspec.Struct):
    transid: str | None = None
    status: str | None = None


class TokenBody(msgspec.Struct):
    expiresIn: int | None = None  # seconds


_device = msgspec.json.Decoder(DeviceBody)
_receipt = msgspec.json.Decoder(ReceiptBody)
_token = msgspec.json.Decoder(TokenBody)


def _app_of(runtime: Runtime, service: Service, app_id: str) -> App | None:
    app = runtime.apps.find(app_id)
    return app if app is not None and app.service_id == service.id else None


def _no_app(app_id: str) -> Response:
    return plain_error(404, "7104", f"no app {app_id!r} for this service")


async def devices(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    app_id = request.path_params["app_id"]
    try:
        service = authenticate_sms(request.headers, runtime.services)
        app = _app_of(runtime, service, app_id)
        if app is None:
            return _no_app(app_id)
        if request.method == "POST":
            raw = await read_json(request, runtime.config.server.max_body_bytes)
            device = _check_device(app, _decode(_device, raw))
            stored = await runtime.store.save_device(device)
            return json_response(shown(stored), 201)
        user_id = request.query_params.get("userid") or None
        found = await runtime.store.list_devices(app.id, user_id)
    except ApiError as exc:
        return sms_error(exc)
    return json_response(DeviceList([shown(d) for d in found]))


async def device(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    app_id = request.path_params["app_id"]
    try:
        service = authenticate_sms(request.headers, runtime.services)
    except ApiError as exc:
        return sms_error(exc)
    app = _app_of(runtime, service, app_id)
    if app is None:
        return _no_app(app_id)
    if not await runtime.store.delete_devices(app.id, [request.path_params["device_id"]]):
        return plain_error(404, "404", "no such device in this app")
    return Response(status_code=204)


def shown(d: Device) -> DeviceView:
    """A device as the API shows it: never a web push subscription's keys (its auth secret)."""
    web = d.provider == "webpush"
    return DeviceView(
        deviceId=d.device_id,
        appid=d.app_id,
        userid=d.user_id,
        customerid=d.customer_id,
        platform=d.platform,
        provider=d.provider,
        createdAt=clock.iso(d.created_at),
        updatedAt=clock.iso(d.updated_at),
        token=None if web else d.token,
        endpoint=d.token if web else None,
    )


def _decode(decoder: msgspec.json.Decoder[T], raw: bytes) -> T:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise typed_error(exc) from None


def _text(value: str | None, field: str, limit: int = FIELD_MAX_CHARS) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise InvalidParameter(f"longer than {limit} characters", field=field)
    return text


def _check_device(app: App, body: DeviceBody) -> Device:
    user_id = _text(body.userid, "userid")
    customer_id = _text(body.customerid, "customerid")
    if not user_id and not customer_id:
        raise MandatoryMissing("userid or customerid is required", field="userid")
    platform = _text(body.platform, "platform").lower()
    if not platform:
        raise MandatoryMissing("platform is required", field="platform")
    if platform not in PLATFORM_PROVIDERS:
        raise InvalidParameter("platform must be android, ios, web or windows", field="platform")
    provider = _text(body.provider, "provider").lower() or PLATFORM_PROVIDERS[platform]
    if provider not in PROVIDERS:
        raise InvalidParameter("provider must be fcm, apns, webpush or wns", field="provider")
    if provider not in SERVES[platform]:
        raise InvalidParameter(f"provider {provider} does not serve platform {platform}", field="provider")
    now = clock.now()
    base = Device("", app.id, app.service_id, user_id, customer_id, platform, provider, "", "", "", now, now)
    if provider == "webpush":
        return _subscription(app, base, body.subscription)
    token = _text(body.token, "token", TOKEN_MAX_CHARS)
    if not token:
        raise MandatoryMissing("token is required", field="token")
    if provider == "wns" and (problem := endpoint_problem(app, "wns", token)):
        raise InvalidParameter(problem, field="token")
    return dataclasses.replace(base, token=token)


def _subscription(app: App, base: Device, sub: Subscription | None) -> Device:
    if sub is None:
        raise MandatoryMissing("a web push device needs its subscription", field="subscription")
    endpoint = _text(sub.endpoint, "subscription.endpoint", TOKEN_MAX_CHARS)
    if not endpoint:
        raise MandatoryMissing("subscription.endpoint is required", field="subscription.endpoint")
    if problem := endpoint_problem(app, "webpush", endpoint):
        raise InvalidParameter(problem, field="subscription.endpoint")
    keys = sub.keys or Keys()
    p256dh, auth = _text(keys.p256dh, "subscription.keys.p256dh"), _text(keys.auth, "subscription.keys.auth")
    if not p256dh or not auth:
        raise MandatoryMissing("the subscription's keys are required", field="subscription.keys")
    return dataclasses.replace(base, token=endpoint, p256dh=p256dh, auth=auth)


async def user_token(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    app_id = request.path_params["app_id"]
    try:
        service = authenticate_sms(request.headers, runtime.services)
        app = _app_of(runtime, service, app_id)
        if app is None:
            return _no_app(app_id)
        raw = await request.body()
        ttl = USER_TOKEN_TTL_S
        if raw.strip():
            given = _decode(_token, await read_json(request, runtime.config.server.max_body_bytes))
            if given.expiresIn is not None:
                if not 60 <= given.expiresIn <= 30 * 86400:
                    raise InvalidParameter("between 60 and 2592000 seconds", field="expiresIn")
                ttl = given.expiresIn
    except ApiError as exc:
        return sms_error(exc)
    if not app.client_secret:
        return plain_error(409, "7104", f"app {app.id} has no client_secret to sign user tokens with")
    user_id = request.path_params["user_id"]
    now = int(time.time())
    claims = {"sub": user_id, "aud": app.id, "iat": now, "exp": now + ttl}
    token = jwt.encode(claims, app.client_secret, algorithm="HS256")
    return json_response(UserToken(token, user_id, app.id, ttl), 201)


def _user_of(runtime: Runtime, app_id: str, token: str | None) -> tuple[App, str]:
    """The app and user a user token is for; AuthFailed unless it is valid for this app."""
    if token is None:
        raise CredentialsMissing("a user token (Authorization: Bearer) is required")
    app = runtime.apps.find(app_id)
    if app is None or not app.client_secret:
        raise AuthFailed("this app takes no user tokens")
    try:
        claims = jwt.decode(
            token,
            app.client_secret,
            algorithms=["HS256"],
            audience=app.id,
            options={"require": ["sub", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthFailed(f"the user token is invalid ({exc})") from None
    return app, str(claims["sub"])


async def _reached(runtime: Runtime, app: App, key: str, address: str, user_id: str) -> bool:
    """Whether a message to `address` (under destination key `key`) went to this user: the user itself,
    a customer or device registered to them. A token no device registered is nobody's, so any of the
    app's users may report on it."""
    if key == "userid":
        return address == user_id
    if key == "customerid":
        devices = await runtime.store.find_devices(app.id, "customer_id", address)
        return any(d.user_id == user_id for d in devices)
    devices = await runtime.store.find_devices(app.id, "device_id", address)
    devices = devices or await runtime.store.find_devices(app.id, "token", address)
    return not devices or any(d.user_id == user_id for d in devices)


async def receipts(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        app, user_id = _user_of(runtime, request.path_params["app_id"], bearer(request.headers))
        body = _decode(_receipt, await read_json(request, runtime.config.server.max_body_bytes))
        transid = _text(body.transid, "transid")
        if not transid:
            raise MandatoryMissing("transid is required", field="transid")
        status = _text(body.status, "status").lower()
        if status not in ("delivered", "read"):
            raise InvalidParameter("status must be Delivered or Read", field="status")
    except ApiError as exc:
        return sms_error(exc)
    message = await runtime.store.get_message(app.service_id, transid)
    if message is None or message.channel != "push" or message.content.get("appid") != app.id:
        return plain_error(404, "404", f"no push message {transid} of this app")
    if not await _reached(runtime, app, message.address_type, message.address, user_id):
        return plain_error(403, "7001", "the message was sent to another user")
    now = clock.now()
    steps = [DELIVERED] if status == "delivered" else [DELIVERED, READ]
    changes = [Advance(app.service_id, transid, outcome, now) for outcome in steps]

    def notice(target: ReceiptTarget, outcome: Outcome, at: float) -> OutgoingNotification | None:
        return notification_for(runtime.services, target, outcome, at)

    if any(await runtime.store.advance(changes, notice)):
        runtime.wake_notifier()
    return Response(status_code=204)

"""The ASGI application: routes, JSON for every error, and a Request-Id on every response."""

import asyncio
import logging
import re
import time
from collections.abc import Awaitable
from http import HTTPStatus

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings import console, ids
from tidings.api import admin, devices, tracking, webhooks
from tidings.api.consent import members
from tidings.api.links import follow
from tidings.api.listing import list_messages
from tidings.api.messages import get_message
from tidings.api.messaging import send_v1
from tidings.api.openapi import openapi_json
from tidings.api.responses import json_response, plain_error
from tidings.api.sms import get_sms, send_sms
from tidings.api.v2 import get_v2, send_v2
from tidings.api.whatsapp import get_whatsapp, send_whatsapp
from tidings.observe.exposition import metrics_endpoint
from tidings.observe.logs import REQUEST_ID
from tidings.observe.metrics import METRICS, UNMATCHED
from tidings.runtime import Runtime
from tidings.schema.api_wire import Health, NotReady

log = logging.getLogger("tidings.api")


async def healthz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        await asyncio.wait_for(runtime.store.ping(), 5.0)
    except Exception as exc:
        log.error("health check failed: %s", exc)
        return plain_error(503, "7006", "the store is not answering")
    return json_response(Health("ok"))


READY_TIMEOUT_S = 2.0
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")


async def readyz(request: Request) -> Response:
    """200 while every part this process depends on answers (the store; Redis when configured), else
    503 naming each that did not and why. A load balancer stops sending requests here meanwhile."""
    runtime: Runtime = request.app.state.runtime
    checks: dict[str, Awaitable[object]] = {"store": runtime.store.ping()}
    if runtime.redis is not None:
        checks["redis"] = _ping(runtime.redis)
    results = await asyncio.gather(
        *(asyncio.wait_for(check, READY_TIMEOUT_S) for check in checks.values()), return_exceptions=True
    )
    failed = {name: _why(r) for name, r in zip(checks, results, strict=True) if isinstance(r, BaseException)}
    description = "; ".join(f"{name}: {why}" for name, why in failed.items())
    # Said when it changes, not at every probe of a load balancer.
    if description != getattr(request.app.state, "not_ready", ""):
        if description:
            log.warning("not ready: %s", description)
        else:
            log.info("ready again")
        request.app.state.not_ready = description
    if not failed:
        return json_response(Health("ready"))
    message = f"not ready: {' and '.join(failed)} not answering"
    return json_response(NotReady("not ready", "503", message, description, failed), 503)


async def _ping(redis: Redis) -> None:
    answer = redis.ping()
    if isinstance(answer, Awaitable):  # it is, on the asyncio client; redis-py's types say either
        await answer


def _why(exc: BaseException) -> str:
    """A failed check's reason, fit to show and log: a URL's user and password are cut out."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {READY_TIMEOUT_S:g} s"
    text = _CREDENTIALS.sub(r"\1", str(exc))[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if exc.detail and exc.detail != phrase else ""
    if exc.status_code == 404:
        detail = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    description = f"{phrase}: {detail}" if detail else phrase
    return plain_error(exc.status_code, str(exc.status_code), description, exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    return plain_error(500, "7006", "Internal error occurred")


class RequestId:
    """Outermost middleware: every response, errors from any layer included, gets a Request-Id; what is
    logged while the request is handled carries it (`observe.logs.REQUEST_ID`); its time is measured per
    route template (`ROUTE`, set by the route that took it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ids.new_id()
        token = REQUEST_ID.set(request_id)
        header = (b"request-id", request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            METRICS.request(method, scope.get(ROUTE, UNMATCHED), status, time.perf_counter() - started)


ROUTE = "tidings.route"  # the scope key of the template of the route that took a request
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _tagged(app: ASGIApp, template: str) -> ASGIApp:
    """A route's handler that first notes its route's template in the scope (the middleware's scope:
    Starlette passes the same dict down), so that metrics name routes, not paths."""

    async def tagged(scope: Scope, receive: Receive, send: Send) -> None:
        scope[ROUTE] = template
        await app(scope, receive, send)

    return tagged


def create_app(runtime: Runtime) -> ASGIApp:
    """The application for a started runtime (the server starts and stops the runtime around it)."""
    routes = [
        Route("/resources/v1/messaging", send_v1, methods=["POST"]),
        Route("/resources/v1/messaging/", send_v1, methods=["POST"]),
        Route("/v1/messages", list_messages, methods=["GET"]),
        Route("/v1/messages/{transid}", get_message, methods=["GET"]),
        Route("/v1/sms/messages", send_sms, methods=["POST"]),
        Route("/v1/sms/messages/{message_id}", get_sms, methods=["GET"]),
        Route("/v1/whatsapp/messages", send_whatsapp, methods=["POST"]),
        Route("/v1/whatsapp/messages/{message_id}", get_whatsapp, methods=["GET"]),
        Route("/v2/messages", send_v2, methods=["POST"]),
        Route("/v2/messages/{message_id}", get_v2, methods=["GET"]),
        Route("/v1/groups/{group_id}/members", members, methods=["GET", "POST", "DELETE"]),
        Route("/v1/apps/{app_id}/devices", devices.devices, methods=["GET", "POST"]),
        Route("/v1/apps/{app_id}/devices/{device_id}", devices.device, methods=["DELETE"]),
        Route("/v1/apps/{app_id}/users/{user_id}/token", devices.user_token, methods=["POST"]),
        Route("/v1/apps/{app_id}/receipts", devices.receipts, methods=["POST"]),
        Route("/webhooks/{app_id}", webhooks.webhook, methods=["GET", "POST"]),
        Route("/l/{code}", follow, methods=["GET", "HEAD"]),
        Route("/t/o/{code}.gif", tracking.open_pixel, methods=["GET", "HEAD"]),
        Route("/t/c/{code}", tracking.click, methods=["GET", "HEAD"]),
        Route("/t/u/{code}", tracking.unsubscribe, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *admin.routes(),
        *console.routes(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.runtime = runtime
    for route in app.router.routes:
        if isinstance(route, Route):
            route.app = _tagged(route.app, route.path)
    return RequestId(app)

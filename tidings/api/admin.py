"""The admin API: `/admin/v1/services`, `/templates`, `/smartlinks`, `/contact-policy/groups` and `/apps`,
and the list of gone addresses (`/admin/v1/gone-addresses`, read and remove).

Bodies are shaped like the config file's tables. `Authorization: Bearer <[server] admin_token>`; with no
token configured the API is off (403). An entry is named in the URL by its key fields: a service by its
id, a template by service/channel/id, a smart link by service/linkid, a group by service/id (a service
may be given by id or name), an app by its id. An app's secrets are write-only: no answer holds them, and
a change that leaves one out keeps the stored one. Changes are in force for the next request; other
processes follow within a second.
"""

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Literal
from urllib.parse import quote

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tidings.api.auth import bearer
from tidings.api.body import read_json
from tidings.api.responses import json_response
from tidings.catalogue import KINDS, CatalogueError, Kind, find, prepare, removable, shown_entry
from tidings.clock import iso
from tidings.errors import BodyTooLarge, InvalidJson
from tidings.runtime import Runtime
from tidings.schema.api_wire import ApiErrorBody, GoneAddressList, GoneAddressView

log = logging.getLogger("tidings.admin")
PREFIXES = {
    "services": "services",
    "templates": "templates",
    "smartlinks": "smartlinks",
    "contact-policy/groups": "groups",
    "apps": "apps",
}
How = Literal["add", "update", "patch", "delete"]
METHODS: dict[str, How] = {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}
PAST = {"add": "added", "update": "updated", "delete": "deleted"}
Endpoint = Callable[[Request], Awaitable[Response]]


def _error(status: int, description: str, problems: list[str] | None = None) -> Response:
    body = ApiErrorBody(str(status), description, description, problems or None)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return json_response(body, status, headers)


def _refusal(request: Request, runtime: Runtime) -> Response | None:
    token = runtime.config.server.admin_token
    if not token:
        return _error(403, "the admin API is off: set [server] admin_token to use it")
    given = bearer(request.headers)
    if given is None:
        return _error(401, "Authorization: Bearer <admin token> is required")
    if not hmac.compare_digest(given.encode(), token.encode()):
        return _error(401, "the admin token is wrong")
    return None


def routes() -> list[Route]:
    out = [
        Route("/admin/v1/gone-addresses", gone_addresses, methods=["GET"]),
        Route("/admin/v1/gone-addresses/{service}/{channel}/{address:path}", forget_gone, methods=["DELETE"]),
    ]
    for prefix, kind in PREFIXES.items():
        out.append(Route(f"/admin/v1/{prefix}", _collection(KINDS[kind]), methods=["GET", "POST"]))
        methods = ["GET", "PUT", "PATCH", "DELETE"]
        out.append(Route(f"/admin/v1/{prefix}/{{name:path}}", _entry(KINDS[kind]), methods=methods))
    return out


async def gone_addresses(request: Request) -> Response:
    """The addresses providers said are gone (dead push tokens; later bounced and unsubscribed email
    addresses), newest first; `?service=` narrows to one service's. Messages to them fail at once with
    the code they failed with, until one is removed here."""
    runtime: Runtime = request.app.state.runtime
    if (refused := _refusal(request, runtime)) is not None:
        return refused
    service = request.query_params.get("service")
    if service:
        service = runtime.catalogue.service_id(service)
    listed = await runtime.store.list_gone(service or None)
    return json_response(
        GoneAddressList(
            [
                GoneAddressView(g.service_id, g.channel, g.address, g.code, g.description, iso(g.at))
                for g in listed
            ]
        )
    )


async def forget_gone(request: Request) -> Response:
    """Remove an address from the gone list: the next message to it goes to the provider again."""
    runtime: Runtime = request.app.state.runtime
    if (refused := _refusal(request, runtime)) is not None:
        return refused
    p = request.path_params
    service = runtime.catalogue.service_id(p["service"])
    if not await runtime.store.forget_gone(service, p["channel"], p["address"]):
        return _error(404, f"{p['address']} is not a gone {p['channel']} address of {service}")
    log.info("admin: %s address of %s is no longer remembered as gone", p["channel"], service)
    return Response(status_code=204)


def _collection(kind: Kind) -> Endpoint:
    async def collection(request: Request) -> Response:
        """GET lists a kind's entries (`?service=` narrows to one service's); POST adds one."""
        runtime: Runtime = request.app.state.runtime
        if (refused := _refusal(request, runtime)) is not None:
            return refused
        if request.method == "POST":
            return await _change(request, runtime, kind, "add", ())
        await runtime.refresh()
        listing = runtime.catalogue.listing(kind.name, request.query_params.get("service"))
        return json_response({kind.name: listing})

    return collection


def _entry(kind: Kind) -> Endpoint:
    async def entry(request: Request) -> Response:
        """GET shows one entry; PUT replaces it, PATCH changes the keys given, DELETE removes it."""
        runtime: Runtime = request.app.state.runtime
        if (refused := _refusal(request, runtime)) is not None:
            return refused
        path = tuple(request.path_params["name"].strip("/").split("/"))
        if request.method != "GET":
            return await _change(request, runtime, kind, METHODS[request.method], path)
        await runtime.refresh()
        try:
            return json_response(shown_entry(find(runtime.catalogue, kind, path)))
        except CatalogueError as exc:
            return _error(exc.status, exc.message)

    return entry


async def _change(
    request: Request, runtime: Runtime, kind: Kind, how: How, path: tuple[str, ...]
) -> Response:
    body: object = None
    if how != "delete":
        try:
            body = msgspec.json.decode(await read_json(request, runtime.config.server.max_body_bytes))
        except BodyTooLarge as exc:
            return _error(413, exc.detail)
        except InvalidJson as exc:
            return _error(400, "the body is not valid JSON", [exc.detail])
        except msgspec.DecodeError as exc:  # what only msgspec refuses: a number out of its range
            return _error(400, "the body is not valid JSON", [str(exc)])
    # One change at a time in this process, each checked against the catalogue as it now stands.
    async with runtime.catalogue_lock:
        await runtime.refresh()
        snapshot = runtime.catalogue
        change: Literal["add", "update", "delete"]
        try:
            current = find(snapshot, kind, path) if path else None
            if current is not None and how == "delete":
                removable(snapshot, current)
                written, change = current, "delete"
            else:
                written = prepare(snapshot, kind, body, current, patch=how == "patch")
                change = "add" if current is None else "update"
        except CatalogueError as exc:
            return _error(exc.status, exc.message, exc.problems)
        if not await runtime.store.change_catalogue(written, change):
            # Another process changed the same entry between our read and our write.
            return _error(409, f"{kind.name} entry {written.name} changed meanwhile; try again")
        await runtime.refresh()
    log.info("admin: %s %s %s", PAST[change], kind.name, written.name)
    if change == "delete":
        return Response(status_code=204)
    if how == "add":
        # Percent-encoded: a name may hold any character, a header only Latin-1.
        location = f"{request.url.path.rstrip('/')}/{quote(written.name, safe='/')}"
        return json_response(shown_entry(written), 201, {"Location": location})
    return json_response(shown_entry(written))

"""`tidings services|templates|smartlinks|groups list|show|add|update|remove`: the admin API from a shell.

Each command is one HTTP request to a running server, so a change is in force as soon as the command
returns, with no restart. Where the server is and its admin token come from `--url` and `--token`, else
$TIDINGS_URL and $TIDINGS_ADMIN_TOKEN, else the `[server]` table of the config file.
"""

import asyncio
import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import aiohttp
import click
import msgspec

from tidings.catalogue import KINDS, Kind
from tidings.config import ConfigError, load_config

PREFIX = {"services": "services", "templates": "templates", "smartlinks": "smartlinks"}
PREFIX["groups"] = "contact-policy/groups"
PREFIX["apps"] = "apps"
F = TypeVar("F", bound=Callable[..., Any])
HIDDEN = ("key", "secret")  # shown in full by `show` and --json, not in a listing's columns


def _fail(message: str, problems: list[str] | None = None) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    for problem in problems or []:
        click.echo(f"  {problem}", err=True)
    sys.exit(1)


class Target:
    """The server the commands talk to; where it is and its token are worked out on the first call."""

    def __init__(self, url: str | None, token: str | None, config_path: str | None) -> None:
        self._given = (url, token, config_path or os.environ.get("TIDINGS_CONFIG"))
        self.url = ""
        self.token = ""

    def given(self, url: str | None, token: str | None, config_path: str | None) -> "Target":
        """The same with what was given after the subcommand, which wins over what was given before."""
        before = self._given
        return Target(url or before[0], token or before[1], config_path or before[2])

    def _resolve(self) -> None:
        url, token, path = self._given
        server = None
        if path and not (url and token):
            try:
                server = load_config(path).server
            except ConfigError as exc:
                _fail(f"cannot read {path}", exc.problems)
        if not url:
            host = server.host if server else "127.0.0.1"
            host = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
            url = f"http://{host}:{server.port if server else 8080}"
        self.url = url.rstrip("/")
        self.token = token or (server.admin_token if server else "")
        if not self.token:
            _fail("no admin token: give --token, $TIDINGS_ADMIN_TOKEN, or --config with [server] admin_token")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return asyncio.run(self._call(method, path, body))

    async def _call(self, method: str, path: str, body: Any) -> Any:
        if not self.url:
            self._resolve()
        url = f"{self.url}/admin/v1/{path}"
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = aiohttp.ClientTimeout(total=30)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(method, url, json=body, headers=headers) as answer,
            ):
                text = await answer.text()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            _fail(f"cannot reach {self.url}: {exc or type(exc).__name__}")
        data = json.loads(text) if text else None
        if status >= 400:
            if isinstance(data, dict):
                _fail(f"{data.get('description', status)} (HTTP {status})", data.get("problems"))
            _fail(f"HTTP {status}")
        return data


def _fields(kind: Kind, pairs: tuple[str, ...]) -> dict[str, Any]:
    """FIELD=VALUE pairs as a body: text fields as written, lists as a,b,c or JSON, others as JSON."""
    types = {f.name: f.type for f in msgspec.structs.fields(kind.struct)}
    body: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            _fail(f"{pair!r} is not FIELD=VALUE")
        kind_of = types.get(name)
        if kind_of is str:
            body[name] = raw
        elif kind_of == list[str] and not raw.startswith("["):
            body[name] = [item.strip() for item in raw.split(",") if item.strip()]
        else:
            try:
                body[name] = json.loads(raw)
            except json.JSONDecodeError:
                body[name] = raw  # the server names the field and the type it wants
    return body


def _show(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _row(kind: Kind, item: dict[str, Any]) -> str:
    name = "/".join(str(item.get(key, "")) for key in kind.keys)
    rest = [
        f"{k}={'…' + str(v)[-4:] if k in HIDDEN and v else json.dumps(v, ensure_ascii=False)}"
        for k, v in item.items()
        if k not in (*kind.keys, "origin")
    ]
    return f"{name}  [{item.get('origin', '')}]  {' '.join(rest)}"


def _server_options(*, envvar: bool) -> Callable[[F], F]:
    """--url, --token and --config: on the group (`services --url U list`, where the environment
    fills them in) and on every subcommand (`services list --url U`, which wins over both)."""

    def decorate(f: F) -> F:
        f = click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False),
            help="Read the server and token from this file.",
        )(f)
        f = click.option(
            "--token",
            envvar="TIDINGS_ADMIN_TOKEN" if envvar else None,
            help="The admin token ([server] admin_token; default $TIDINGS_ADMIN_TOKEN).",
        )(f)
        return click.option(
            "--url",
            envvar="TIDINGS_URL" if envvar else None,
            help="The server (default $TIDINGS_URL, else from --config, else http://127.0.0.1:8080).",
        )(f)

    return decorate


def _with_target(f: Callable[..., None]) -> Callable[..., None]:
    """A subcommand that takes the server options too, and gets the Target they and the group's make."""

    @functools.wraps(f)
    def command(
        *args: Any, url: str | None, token: str | None, config_path: str | None, **params: Any
    ) -> None:
        target = click.get_current_context().find_object(Target)
        assert target is not None, "the group makes the Target"
        f(target.given(url, token, config_path), *args, **params)

    return _server_options(envvar=False)(command)


def _group(kind: Kind) -> click.Group:
    noun = {"services": "services", "groups": "contact-policy groups"}.get(kind.name, kind.name)
    key = "/".join(k.upper() for k in kind.keys)

    @click.group(name=kind.name, help=f"List and change {noun} through a running server's admin API.")
    @_server_options(envvar=True)
    @click.pass_context
    def group(ctx: click.Context, url: str | None, token: str | None, config_path: str | None) -> None:
        ctx.obj = Target(url, token, config_path)

    @group.command("list", help=f"List the {noun}.")
    @click.option("--service", help="Only this service's (id or name).")
    @click.option("--json", "as_json", is_flag=True, help="Print the JSON the API answers.")
    @_with_target
    def list_(target: Target, service: str | None, as_json: bool) -> None:
        path = PREFIX[kind.name] + (f"?service={service}" if service else "")
        items = target.call("GET", path)[kind.name]
        if as_json:
            _show(items)
        for item in [] if as_json else items:
            click.echo(_row(kind, item))

    @group.command(help=f"Show one entry, named {key}.")
    @click.argument("name")
    @_with_target
    def show(target: Target, name: str) -> None:
        _show(target.call("GET", f"{PREFIX[kind.name]}/{name}"))

    @group.command(help="Add an entry from FIELD=VALUE pairs (or --json FILE, - for stdin).")
    @click.argument("pairs", nargs=-1)
    @click.option("--json", "json_file", type=click.File("r"), help="The whole entry as JSON.")
    @_with_target
    def add(target: Target, pairs: tuple[str, ...], json_file: Any) -> None:
        body = json.load(json_file) if json_file else {}
        _show(target.call("POST", PREFIX[kind.name], {**body, **_fields(kind, pairs)}))

    @group.command(help=f"Change the given fields of the entry named {key}.")
    @click.argument("name")
    @click.argument("pairs", nargs=-1, required=True)
    @_with_target
    def update(target: Target, name: str, pairs: tuple[str, ...]) -> None:
        _show(target.call("PATCH", f"{PREFIX[kind.name]}/{name}", _fields(kind, pairs)))

    @group.command(help=f"Delete the entry named {key}.")
    @click.argument("name")
    @_with_target
    def remove(target: Target, name: str) -> None:
        target.call("DELETE", f"{PREFIX[kind.name]}/{name}")
        click.echo(f"deleted {kind.name} {name}")

    return group


COMMANDS = [_group(kind) for kind in KINDS.values()]

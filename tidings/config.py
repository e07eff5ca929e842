"""The configuration file (TOML): its schema, defaults, and checks that name the key and line.

Every problem is collected, not just the first, so `tidings check-config` can list them all.
"""

import base64
import binascii
import contextlib
import dataclasses
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from tidings.channels import KINDS, connector_names
from tidings.channels.kind import ProviderKind, configured
from tidings.channels.sandbox import SandboxConfig
from tidings.channels.smpp import SmscConfig
from tidings.schema.common import sender_id_problem
from tidings.specs import names as channel_names
from tidings.urls import is_http_url

DEFAULT_DATABASE = "sqlite:///tidings.db"
KeyPath = tuple[str | int, ...]
Problems = list[tuple[KeyPath, str]]  # (the key's path, what is wrong with it)


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080
    database: str = DEFAULT_DATABASE
    public_url: str = ""
    max_body_bytes: int = 1_048_576
    admin_token: str = ""


class NotifyConfig(msgspec.Struct, forbid_unknown_fields=True):
    timeout_s: float = 10.0
    retries: int = 3
    retry_interval_s: float = 60.0
    concurrency: int = 512


class RedisConfig(msgspec.Struct, forbid_unknown_fields=True):
    url: str = ""  # redis://HOST[:PORT][/DB]; empty: no Redis (one process, or per-process limits)
    prefix: str = "tidings:"  # of every key and channel, so several deployments can share one Redis


class ServiceConfig(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    key: str
    name: str = ""
    secret: str = ""
    active: bool = True
    notify_url: str = ""
    tps: int = 1000
    senderids: list[str] = msgspec.field(default_factory=list)
    inbound_url: str = ""
    numbers: list[str] = msgspec.field(default_factory=list)


class TemplateConfig(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    service: str  # the owning service's name (or id)
    text: str
    channel: str = "sms"


class SmartlinkConfig(msgspec.Struct, forbid_unknown_fields=True):
    linkid: int
    service: str  # the owning service's name (or id)
    url: str  # the default target
    ios_url: str = ""  # chosen by User-Agent
    android_url: str = ""
    expired_url: str = ""  # after the link's validity (else the default target)


class GroupConfig(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    service: str  # the owning service's name (or id)
    kind: str = "opt-in"  # opt-in: consent needed; opt-out: everyone unless opted out
    caps: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)  # category -> window -> count


class Config(msgspec.Struct, forbid_unknown_fields=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    notify: NotifyConfig = msgspec.field(default_factory=NotifyConfig)
    sandbox: SandboxConfig = msgspec.field(default_factory=SandboxConfig)
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    services: list[ServiceConfig] = msgspec.field(default_factory=list)
    smsc: list[SmscConfig] = msgspec.field(default_factory=list)
    templates: list[TemplateConfig] = msgspec.field(default_factory=list)
    smartlinks: list[SmartlinkConfig] = msgspec.field(default_factory=list)
    groups: list[GroupConfig] = msgspec.field(default_factory=list)  # [[contact_policy.groups]]
    routes: dict[str, str] = msgspec.field(default_factory=dict)
    source: str | None = None  # the file it came from; not a TOML key


_TABLES: dict[str, type[msgspec.Struct]] = {
    "server": ServerConfig,
    "notify": NotifyConfig,
    "redis": RedisConfig,
    **{kind.key: kind.settings for kind in KINDS if not kind.many},
}


_ARRAYS: dict[str, type[msgspec.Struct]] = {
    "services": ServiceConfig,
    **{kind.key: kind.settings for kind in KINDS if kind.many},
    "templates": TemplateConfig,
    "smartlinks": SmartlinkConfig,
}


class ConfigError(Exception):
    """The file has problems; `problems` lists each one with its key and line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class _Checker:
    lines: dict[tuple[str | int, ...], int]
    source: str
    problems: list[str]
    found: Problems = dataclasses.field(default_factory=list)

    def add(self, path: tuple[str | int, ...], message: str) -> None:
        line = self._line_of(path)
        where = f"{self.source}:{line}" if line else self.source
        self.problems.append(f"{where}: {dotted(path)}: {message}")
        self.found.append((path, message))

    def _line_of(self, path: tuple[str | int, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"]+(?:\s*\.\s*[A-Za-z0-9_\-\"]+)*)\s*=")


def _locate(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each table and key path to the line that defines it (TOML parsers don't keep lines)."""
    lines: dict[tuple[str | int, ...], int] = {}
    counts: dict[tuple[str, ...], int] = {}
    table: tuple[str | int, ...] = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        if m := _HEADER.match(raw):
            names = tuple(p.strip().strip('"') for p in m.group(2).split("."))
            if m.group(1) == "[[":
                index = counts.get(names, 0)
                counts[names] = index + 1
                table = (*names, index)
            else:
                table = names
            lines.setdefault(table, number)
        elif m := _KEY.match(raw):
            keys = tuple(p.strip().strip('"') for p in m.group(1).split("."))
            lines.setdefault((*table, *keys), number)
    return lines


def _check_struct(
    check: _Checker, path: tuple[str | int, ...], value: Any, kind: type[msgspec.Struct]
) -> dict[str, Any]:
    """Check each key of one table on its own so that every bad key is reported."""
    if not isinstance(value, dict):
        check.add(path, f"expected a table, got {type(value).__name__}")
        return {}
    fields = {f.name: f for f in msgspec.structs.fields(kind)}
    good: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None or key == "source":
            check.add((*path, key), f"unknown key (known: {', '.join(sorted(set(fields) - {'source'}))})")
            continue
        try:
            good[key] = msgspec.convert(item, field.type)
        except msgspec.ValidationError as exc:
            check.add((*path, key), _type_message(exc))
    for name, field in fields.items():
        if field.required and name not in value:
            check.add(path, f"missing required key `{name}`")
    return good


def _type_message(exc: msgspec.ValidationError) -> str:
    return str(exc).replace("Expected `", "expected `").split(" - at ")[0]


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse and check a config file's text; raise ConfigError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: TOML syntax error: {exc}"]) from None
    check = _Checker(_locate(text), source, [])
    tables: dict[str, Any] = {}
    arrays: dict[str, list[tuple[int, Any]]] = {name: [] for name in _ARRAYS}
    routes: dict[str, str] = {}
    groups: list[tuple[int, GroupConfig]] = []
    for key, value in data.items():
        if key in _TABLES:
            good = _check_struct(check, (key,), value, _TABLES[key])
            tables[key] = msgspec.convert(good, _TABLES[key])
        elif key in _ARRAYS:
            if not isinstance(value, list):
                check.add((key,), "expected an array of tables, written [[" + key + "]]")
                continue
            for i, entry in enumerate(value):
                good = _check_struct(check, (key, i), entry, _ARRAYS[key])
                with contextlib.suppress(msgspec.ValidationError):  # a missing key is reported above
                    arrays[key].append((i, msgspec.convert(good, _ARRAYS[key])))
        elif key == "routes":
            routes = _check_routes(check, value)
        elif key == "contact_policy":
            groups = _check_groups_table(check, value)
        else:
            known = ", ".join(sorted([*_TABLES, *_ARRAYS, "routes", "contact_policy"]))
            check.add((key,), f"unknown key (known: {known})")
    # Values are checked even when some keys had the wrong type, so one run lists every problem.
    lists: dict[str, Any] = {name: [entry for _, entry in found] for name, found in arrays.items()}
    config = Config(
        **tables,
        **lists,
        groups=[g for _, g in groups],
        routes=routes,
        source=source,
    )
    rows = {name: [i for i, _ in found] for name, found in arrays.items()}
    rows["groups"] = [i for i, _ in groups]
    _check_values(config, rows, check)
    if check.problems:
        raise ConfigError(check.problems)
    return config


def load_config(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: the file is not UTF-8 text"]) from None
    return parse_config(text, str(path))


def _check_groups_table(check: _Checker, value: Any) -> list[tuple[int, GroupConfig]]:
    if not isinstance(value, dict):
        check.add(("contact_policy",), "expected a table")
        return []
    out: list[tuple[int, GroupConfig]] = []
    for key, item in value.items():
        if key != "groups":
            check.add(("contact_policy", key), "unknown key (known: groups)")
        elif not isinstance(item, list):
            check.add(
                ("contact_policy", key), "expected an array of tables, written [[contact_policy.groups]]"
            )
        else:
            for i, entry in enumerate(item):
                good = _check_struct(check, ("contact_policy", "groups", i), entry, GroupConfig)
                with contextlib.suppress(msgspec.ValidationError):
                    out.append((i, msgspec.convert(good, GroupConfig)))
    return out


def _check_routes(check: _Checker, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        check.add(("routes",), "expected a table, written [routes]")
        return {}
    routes: dict[str, str] = {}
    for channel, target in value.items():
        if channel not in channel_names():
            check.add(("routes", channel), f"unknown channel (known: {', '.join(channel_names())})")
        elif not isinstance(target, str):
            check.add(("routes", channel), f"expected a connector name, got {type(target).__name__}")
        else:
            routes[channel] = target
    return routes


def _check_values(config: Config, rows: dict[str, list[int]], check: _Checker) -> None:
    s = config.server
    if not 1 <= s.port <= 65535:
        check.add(("server", "port"), f"must be between 1 and 65535, got {s.port}")
    if problem := database_problem(s.database):
        check.add(("server", "database"), problem)
    if s.public_url and not is_http_url(s.public_url):
        check.add(("server", "public_url"), "must be an http:// or https:// URL")
    if s.max_body_bytes < 1024:
        check.add(("server", "max_body_bytes"), "must be at least 1024")
    n = config.notify
    if n.timeout_s <= 0:
        check.add(("notify", "timeout_s"), "must be greater than 0")
    if n.retries < 0:
        check.add(("notify", "retries"), "must be 0 or more")
    if n.retry_interval_s < 0:
        check.add(("notify", "retry_interval_s"), "must be 0 or more")
    if n.concurrency < 1:
        check.add(("notify", "concurrency"), "must be at least 1")
    r = config.redis
    if r.url and not r.url.startswith(("redis://", "rediss://", "unix://")):
        check.add(("redis", "url"), "must be redis://HOST[:PORT][/DB], rediss://… or unix://PATH")
    _check_kinds(config, rows, check, many=False)
    _check_services(config.services, rows["services"], check)
    _check_kinds(config, rows, check, many=True)
    _check_templates(config, rows["templates"], check)
    _check_groups(config, rows["groups"], check)
    _check_smartlinks(config, rows["smartlinks"], check)
    names = connector_names(config)
    for channel, target in config.routes.items():
        if target not in names:
            check.add(
                ("routes", channel), f"no connector named {target!r} (known: {', '.join(sorted(names))})"
            )


def _check_kinds(config: Config, rows: dict[str, list[int]], check: _Checker, many: bool) -> None:
    """Run the checks of the provider kinds written as tables (`many=False`) or as arrays of tables."""
    for kind in KINDS:
        if kind.many == many:
            kind.check(_kind_entries(config, kind, rows), check.add)


def _kind_entries(
    config: Config, kind: ProviderKind[Any], rows: dict[str, list[int]]
) -> list[tuple[KeyPath, Any]]:
    """A provider kind's entries with the key path each came from in the file."""
    entries = configured(config, kind)
    if not kind.many:
        return [((kind.key,), entries[0])]
    return [((kind.key, i), entry) for i, entry in zip(rows[kind.key], entries, strict=True)]


def check_table(value: Any, kind: type[msgspec.Struct]) -> tuple[Any, Problems]:
    """Check one table given outside a file (an admin API body) as a file's would be, keys and types:
    the converted table (None when it has problems) and the problems, each with its key path."""
    check = _Checker({}, "", [])
    good = _check_struct(check, (), value, kind)
    entry = None
    if not check.found:
        try:
            entry = msgspec.convert(good, kind)
        except msgspec.ValidationError as exc:
            check.add((), _type_message(exc))
    return entry, check.found


def check_catalogue(config: Config) -> Problems:
    """The problems of the services, templates, smart links and groups in `config`, by key path."""
    check = _Checker({}, "", [])
    _check_services(config.services, list(range(len(config.services))), check)
    _check_templates(config, list(range(len(config.templates))), check)
    _check_groups(config, list(range(len(config.groups))), check)
    _check_smartlinks(config, list(range(len(config.smartlinks))), check)
    return check.found


def _service_names(config: Config) -> set[str]:
    """What a template's, smart link's or group's `service` key may say: a service's name or id."""
    return {s.name for s in config.services if s.name} | {s.id for s in config.services}


def _check_templates(config: Config, rows: list[int], check: _Checker) -> None:
    owners = _service_names(config)
    seen: set[tuple[str, str, str]] = set()
    for i, t in zip(rows, config.templates, strict=True):
        where = ("templates", i)
        if not t.id.strip():
            check.add((*where, "id"), "must not be empty")
        if config.services and t.service not in owners:
            check.add((*where, "service"), f"no service named {t.service!r}")
        if t.channel not in channel_names():
            check.add((*where, "channel"), f"unknown channel (known: {', '.join(channel_names())})")
        if not t.text:
            check.add((*where, "text"), "must not be empty")
        key = (t.service, t.channel, t.id)
        if key in seen:
            check.add((*where, "id"), f"duplicate template {t.id!r} for this service and channel")
        seen.add(key)


def _check_smartlinks(config: Config, rows: list[int], check: _Checker) -> None:
    owners = _service_names(config)
    seen: set[tuple[str, int]] = set()
    for i, link in zip(rows, config.smartlinks, strict=True):
        where = ("smartlinks", i)
        if (link.service, link.linkid) in seen:
            check.add((*where, "linkid"), f"duplicate linkid {link.linkid} for this service")
        seen.add((link.service, link.linkid))
        if config.services and link.service not in owners:
            check.add((*where, "service"), f"no service named {link.service!r}")
        for key, url in (("url", link.url), ("ios_url", link.ios_url), ("android_url", link.android_url),
                         ("expired_url", link.expired_url)):  # fmt: skip
            if (url or key == "url") and not is_http_url(url):
                check.add((*where, key), "must be an http:// or https:// URL")


CATEGORIES = ("text", "email", "voice", "whatsapp", "push", "inapp", "messenger", "applebusinesschat")
CAP_WINDOWS = ("day", "week", "month")
GROUP_KINDS = ("opt-in", "opt-out")


def _check_groups(config: Config, rows: list[int], check: _Checker) -> None:
    owners = _service_names(config)
    seen: set[tuple[str, str]] = set()
    for i, g in zip(rows, config.groups, strict=True):
        where = ("contact_policy", "groups", i)
        if not g.id.strip():
            check.add((*where, "id"), "must not be empty")
        if (g.service, g.id) in seen:
            check.add((*where, "id"), f"duplicate group {g.id!r} for this service")
        seen.add((g.service, g.id))
        if config.services and g.service not in owners:
            check.add((*where, "service"), f"no service named {g.service!r}")
        if g.kind not in GROUP_KINDS:
            check.add((*where, "kind"), f"must be one of {', '.join(GROUP_KINDS)}")
        for category, windows in g.caps.items():
            if category not in CATEGORIES:
                check.add(
                    (*where, "caps", category), f"unknown channel category (known: {', '.join(CATEGORIES)})"
                )
            for window, count in windows.items():
                if window not in CAP_WINDOWS:
                    check.add((*where, "caps", category, window), "must be day, week or month")
                elif count < 0:
                    check.add((*where, "caps", category, window), "must be 0 or more")


def _check_services(services: list[ServiceConfig], rows: list[int], check: _Checker) -> None:
    ids: set[str] = set()
    keys: set[str] = set()
    numbers: set[str] = set()
    for i, svc in zip(rows, services, strict=True):
        where = ("services", i)
        if not svc.id.strip():
            check.add((*where, "id"), "must not be empty")
        elif svc.id in ids:
            check.add((*where, "id"), f"duplicate service id {svc.id!r}")
        ids.add(svc.id)
        if not svc.key.strip():
            check.add((*where, "key"), "must not be empty")
        elif svc.key in keys:
            check.add((*where, "key"), "the same key is used by another service")
        keys.add(svc.key)
        if svc.secret and decode_secret(svc.secret) is None:
            check.add((*where, "secret"), "must be Base64 (its decoded bytes sign JWTs and notifications)")
        if svc.tps < 1:
            check.add((*where, "tps"), "must be at least 1")
        if svc.notify_url and not is_http_url(svc.notify_url):
            check.add((*where, "notify_url"), "must be an http:// or https:// URL")
        for j, sender in enumerate(svc.senderids):
            if not sender.strip():
                check.add((*where, "senderids", j), "must not be empty")
            elif (problem := sender_id_problem(sender)) is not None:
                check.add((*where, "senderids", j), problem)  # a request using it would be 7004
        if svc.inbound_url and not is_http_url(svc.inbound_url):
            check.add((*where, "inbound_url"), "must be an http:// or https:// URL")
        for j, number in enumerate(svc.numbers):
            digits = number.removeprefix("+")
            if not digits.isdigit():
                check.add((*where, "numbers", j), "must be a phone number or short code: digits, + optional")
            elif digits in numbers:
                check.add((*where, "numbers", j), "already belongs to another service")
            numbers.add(digits)


def decode_secret(secret: str) -> bytes | None:
    """The HMAC key of a service secret (Base64, padded or not); None when it is not Base64."""
    text = secret.strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def database_problem(url: str) -> str | None:
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return None
    if url.startswith(("postgresql://", "postgres://")):
        from tidings.store.postgres import url_problem

        return url_problem(url)
    return "must be sqlite:///PATH (relative), sqlite:////ABSOLUTE/PATH or postgresql://HOST[:PORT]/DATABASE"

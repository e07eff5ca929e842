"""Reading the config file: TOML, each table checked key by key, every problem named with its line.

Every problem is collected, not just the first, so `tidings check-config` can list them all.
"""

import contextlib
import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import msgspec

from tidings.channels import KINDS, connector_names
from tidings.channels.email import EmailConfig, check_email
from tidings.channels.kind import ProviderKind, configured
from tidings.config.problems import Checker, ConfigError, KeyPath, Problems
from tidings.config.rules import check_owned, check_services
from tidings.config.schema import (
    AppConfig,
    Config,
    GroupConfig,
    NotifyConfig,
    RedisConfig,
    ServerConfig,
    ServiceConfig,
    SmartlinkConfig,
    StoreConfig,
    TemplateConfig,
)
from tidings.specs import names as channel_names
from tidings.store.purge import MIN_RETAIN_DAYS
from tidings.urls import is_http_url

_TABLES: dict[str, type[msgspec.Struct]] = {
    "server": ServerConfig,
    "notify": NotifyConfig,
    "redis": RedisConfig,
    "store": StoreConfig,
    "email": EmailConfig,
    **{kind.key: kind.settings for kind in KINDS if not kind.many},
}


_ARRAYS: dict[str, type[msgspec.Struct]] = {
    "services": ServiceConfig,
    **{kind.key: kind.settings for kind in KINDS if kind.many},
    "templates": TemplateConfig,
    "smartlinks": SmartlinkConfig,
    "apps": AppConfig,
}

# Fields that are not TOML keys: the file a config came from, the folder an app's key files are read from.
_NOT_KEYS = frozenset({"source", "base_dir"})


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
                table = _within_array(names, counts)
            lines.setdefault(table, number)
        elif m := _KEY.match(raw):
            keys = tuple(p.strip().strip('"') for p in m.group(1).split("."))
            lines.setdefault((*table, *keys), number)
    return lines


def _within_array(names: tuple[str, ...], counts: dict[tuple[str, ...], int]) -> tuple[str | int, ...]:
    """The key path of a table header: `[apps.fcm]` after the second `[[apps]]` is apps[1].fcm."""
    for cut in range(len(names) - 1, 0, -1):
        if (count := counts.get(names[:cut])) is not None:
            return (*names[:cut], count - 1, *names[cut:])
    return names


def _struct_in(annotation: Any) -> type[msgspec.Struct] | None:
    """The table type a field holds (`FcmSettings | None` holds FcmSettings), if it holds one."""
    for option in typing.get_args(annotation) or (annotation,):
        if isinstance(option, type) and issubclass(option, msgspec.Struct):
            return option
    return None


def _check_struct(
    check: Checker, path: tuple[str | int, ...], value: Any, kind: type[msgspec.Struct]
) -> dict[str, Any]:
    """Check each key of one table on its own so that every bad key is reported."""
    if not isinstance(value, dict):
        check.add(path, f"expected a table, got {type(value).__name__}")
        return {}
    fields = {f.name: f for f in msgspec.structs.fields(kind) if f.name not in _NOT_KEYS}
    good: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            check.add((*path, key), f"unknown key (known: {', '.join(sorted(fields))})")
            continue
        if (table := _struct_in(field.type)) is not None and isinstance(item, dict):
            # A table within the table (an app's provider block): each of its keys is checked on its own.
            inner = _check_struct(check, (*path, key), item, table)
            with contextlib.suppress(msgspec.ValidationError):  # a missing key is reported above
                good[key] = msgspec.convert(inner, table)
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


def parse_config(text: str, source: str = "<config>", base_dir: Path | None = None) -> Config:
    """Parse and check a config file's text; raise ConfigError listing every problem. Relative key
    files of apps are read from `base_dir` (the file's folder; None: the working directory)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: TOML syntax error: {exc}"]) from None
    check = Checker(_locate(text), source, [])
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
    if base_dir is not None:
        lists["apps"] = [msgspec.structs.replace(a, base_dir=str(base_dir)) for a in lists["apps"]]
        lists["smtp"] = [msgspec.structs.replace(a, base_dir=str(base_dir)) for a in lists["smtp"]]
        if "email" in tables:
            tables["email"] = msgspec.structs.replace(tables["email"], base_dir=str(base_dir))
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
    return parse_config(text, str(path), p.resolve().parent)


def _check_groups_table(check: Checker, value: Any) -> list[tuple[int, GroupConfig]]:
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


def _check_routes(check: Checker, value: Any) -> dict[str, str]:
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


def _check_values(config: Config, rows: dict[str, list[int]], check: Checker) -> None:
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
    st = config.store
    if st.retain_days != 0 and st.retain_days < MIN_RETAIN_DAYS:
        check.add(
            ("store", "retain_days"),
            f"must be 0 (keep every message) or at least {MIN_RETAIN_DAYS}, got {st.retain_days}",
        )
    if st.purge_interval_s <= 0:
        check.add(("store", "purge_interval_s"), "must be greater than 0")
    _check_kinds(config, rows, check, many=False)
    check_email(config.email, check.add)
    check_services(config.services, rows["services"], check)
    _check_kinds(config, rows, check, many=True)
    check_owned(config, rows, check)
    names = connector_names(config)
    for channel, target in config.routes.items():
        if target not in names:
            check.add(
                ("routes", channel), f"no connector named {target!r} (known: {', '.join(sorted(names))})"
            )


def _check_kinds(config: Config, rows: dict[str, list[int]], check: Checker, many: bool) -> None:
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
    check = Checker({}, "", [])
    good = _check_struct(check, (), value, kind)
    entry = None
    if not check.found:
        try:
            entry = msgspec.convert(good, kind)
        except msgspec.ValidationError as exc:
            check.add((), _type_message(exc))
    return entry, check.found


def database_problem(url: str) -> str | None:
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return None
    if url.startswith(("postgresql://", "postgres://")):
        from tidings.store.postgres import url_problem

        return url_problem(url)
    return "must be sqlite:///PATH (relative), sqlite:////ABSOLUTE/PATH or postgresql://HOST[:PORT]/DATABASE"

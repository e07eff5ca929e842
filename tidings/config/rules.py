"""The catalogue's rules: services, templates, smart links, contact-policy groups and apps, as the file
and the admin API must both keep them."""

import base64
import binascii
import importlib
import re
from pathlib import Path
from typing import Any

import msgspec

from tidings.config.problems import Checker, KeyPath, Problems
from tidings.config.schema import (
    BUTTON_SUB_TYPES,
    HEADER_FORMATS,
    AppConfig,
    Config,
    ServiceConfig,
    TemplateComponentConfig,
    TemplateConfig,
)
from tidings.errors import ApiError
from tidings.schema.common import sender_id_problem
from tidings.schema.email import email_address
from tidings.specs import names as channel_names
from tidings.urls import is_http_url


def check_catalogue(config: Config) -> Problems:
    """The problems of the services, templates, smart links, groups and apps in `config`, by key path."""
    check = Checker({}, "", [])
    rows = {
        "services": list(range(len(config.services))),
        "templates": list(range(len(config.templates))),
        "groups": list(range(len(config.groups))),
        "smartlinks": list(range(len(config.smartlinks))),
        "apps": list(range(len(config.apps))),
    }
    check_services(config.services, rows["services"], check)
    check_owned(config, rows, check)
    return check.found


def check_owned(config: Config, rows: dict[str, list[int]], check: Checker) -> None:
    """Check what services own (templates, groups, smart links, apps); `rows` says which entry of the
    file each one was."""
    _check_templates(config, rows["templates"], check)
    _check_groups(config, rows["groups"], check)
    _check_smartlinks(config, rows["smartlinks"], check)
    _check_apps(config, rows["apps"], check)


def _service_names(config: Config) -> set[str]:
    """What a template's, smart link's or group's `service` key may say: a service's name or id."""
    return {s.name for s in config.services if s.name} | {s.id for s in config.services}


def _check_templates(config: Config, rows: list[int], check: Checker) -> None:
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
        if t.channel == "whatsapp":
            _check_whatsapp_template(t, where, check)
        else:
            if not t.text:
                check.add((*where, "text"), "must not be empty")
            for name in ("name", "language", "namespace", "components"):
                if getattr(t, name):
                    check.add((*where, name), 'only for channel = "whatsapp"')
        key = (t.service, t.channel, t.id)
        if key in seen:
            check.add((*where, "id"), f"duplicate template {t.id!r} for this service and channel")
        seen.add(key)


# Meta's rules for a template's name and language code (e.g. en, en_US, zh_CN).
_WA_NAME = re.compile(r"[a-z0-9_]{1,512}")
_WA_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
_WA_PART_TYPES = ("header", "body", "button")
_WA_BUTTONS_MAX = 10


def _check_whatsapp_template(t: TemplateConfig, where: KeyPath, check: Checker) -> None:
    if t.name and not _WA_NAME.fullmatch(t.name):
        check.add((*where, "name"), "must be Meta's template name: lower-case letters, digits and _")
    if not t.name and not _WA_NAME.fullmatch(t.id):
        check.add((*where, "id"), "is Meta's template name (no name given): lower-case letters, digits and _")
    if t.language and not _WA_LANGUAGE.fullmatch(t.language):
        check.add((*where, "language"), "must be a language code such as en or en_US")
    seen: set[str] = set()
    indexes: set[int] = set()
    for j, part in enumerate(t.components):
        at = (*where, "components", j)
        if part.type not in _WA_PART_TYPES:
            check.add((*at, "type"), f"must be one of {', '.join(_WA_PART_TYPES)}")
            continue
        if part.type != "button" and part.type in seen:
            check.add((*at, "type"), f"a template has one {part.type}")
        seen.add(part.type)
        _check_layout_part(part, at, indexes, check)
    if len(indexes) > _WA_BUTTONS_MAX:
        check.add((*where, "components"), f"at most {_WA_BUTTONS_MAX} buttons")


def _check_layout_part(part: TemplateComponentConfig, at: KeyPath, indexes: set[int], check: Checker) -> None:
    for k, name in enumerate(part.parameters):
        if not name.strip():
            check.add((*at, "parameters", k), "must not be empty")
    if part.type != "header" and part.format != "text":
        check.add((*at, "format"), "only a header has a format")
    if part.type != "button" and (part.sub_type or part.index != -1):
        check.add((*at, "sub_type" if part.sub_type else "index"), "only a button has one")
    if part.type == "header":
        if part.format not in HEADER_FORMATS:
            check.add((*at, "format"), f"must be one of {', '.join(HEADER_FORMATS)}")
        elif len(part.parameters) > 1:
            check.add((*at, "parameters"), "a header takes at most one parameter")
        elif part.format != "text" and not part.parameters:
            check.add((*at, "parameters"), f"the {part.format} header needs its parameter (the media)")
    elif part.type == "button":
        if part.sub_type not in BUTTON_SUB_TYPES:
            check.add((*at, "sub_type"), f"must be one of {', '.join(BUTTON_SUB_TYPES)}")
        if part.index < 0:
            check.add((*at, "index"), "must be given: the button's position, from 0")
        elif part.index in indexes:
            check.add((*at, "index"), f"two buttons at index {part.index}")
        indexes.add(part.index)
        if len(part.parameters) != 1:
            check.add((*at, "parameters"), "a button takes exactly one parameter")


def _check_smartlinks(config: Config, rows: list[int], check: Checker) -> None:
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


CATEGORIES = ("text", "email", "voice", "whatsapp", "push", "inapp", "messenger", "applebusinesschat", "rcs")
CAP_WINDOWS = ("day", "week", "month")
GROUP_KINDS = ("opt-in", "opt-out")


def _check_groups(config: Config, rows: list[int], check: Checker) -> None:
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


def _check_apps(config: Config, rows: list[int], check: Checker) -> None:
    owners = _service_names(config)
    seen: set[str] = set()
    for i, app in zip(rows, config.apps, strict=True):
        where = ("apps", i)
        if not app.id.strip():
            check.add((*where, "id"), "must not be empty")
        elif app.id in seen:
            check.add((*where, "id"), f"duplicate app id {app.id!r}")
        seen.add(app.id)
        if config.services and app.service not in owners:
            check.add((*where, "service"), f"no service named {app.service!r}")
        if app.client_secret and decode_secret(app.client_secret) is None:
            check.add((*where, "client_secret"), "must be Base64 (its decoded bytes sign user tokens)")
        base = Path(app.base_dir or ".")
        for block, settings in app_blocks(app):
            for key, message in _block_problems(block, settings, base):
                check.add((*where, block, *key), message)


def app_blocks(app: AppConfig) -> list[tuple[str, msgspec.Struct]]:
    """An app's provider blocks that are present, by key (`fcm`, `apns`, …)."""
    out = []
    for field in msgspec.structs.fields(app):
        value = getattr(app, field.name)
        if isinstance(value, msgspec.Struct):
            out.append((field.name, value))
    return out


def _block_problems(block: str, settings: msgspec.Struct, base: Path) -> list[tuple[KeyPath, str]]:
    """What is wrong with one provider block: its URLs and its files first (every provider has them),
    then, when those are sound, what the provider's own module finds (its keys, hosts, ids)."""
    found: list[tuple[KeyPath, str]] = []
    for field in msgspec.structs.fields(settings):
        value: Any = getattr(settings, field.name)
        if field.name.endswith("_url") and not is_http_url(value):
            found.append(((field.name,), "must be an http:// or https:// URL"))
        elif field.name.endswith("_file") and value and (problem := _file_problem(base / value)):
            found.append(((field.name,), problem))
    if not found:
        found = [((), message) for message in provider_problems(block, settings, base)]
    return found


# The module that reads each app block, where it is not tidings.channels.push.<block>.
BLOCK_MODULES = {
    "whatsapp": "tidings.channels.meta.graph",
    "messenger": "tidings.channels.meta.graph",
    "rcs": "tidings.channels.rcs.rbm",
}


def provider_problems(block: str, settings: msgspec.Struct, base: Path) -> list[str]:
    """The checks of the provider module that reads `block` (BLOCK_MODULES): each exposes
    `check(settings, base_dir) -> list[str]`, e.g. that a key file holds a usable key. A block whose
    module is not there yet (or has no checks) passes."""
    name = BLOCK_MODULES.get(block, f"tidings.channels.push.{block}")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the module is there but something it needs is not: say so
            raise
        return []
    checker = getattr(module, "check", None)
    return [str(m) for m in checker(settings, base)] if callable(checker) else []


def _file_problem(path: Path) -> str | None:
    try:
        with path.open("rb"):
            return None
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    except ValueError:  # a NUL in the name: no file can have it
        return f"cannot read {str(path)!r}: a file name cannot hold a NUL character"


def check_services(services: list[ServiceConfig], rows: list[int], check: Checker) -> None:
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
        for j, sender in enumerate(svc.email_from):
            if (problem := email_from_problem(sender)) is not None:
                check.add((*where, "email_from", j), problem)


def email_from_problem(entry: str) -> str | None:
    """Why an `email_from` entry is neither an address nor "@domain", or None."""
    try:
        email_address(("x" + entry) if entry.startswith("@") else entry, "email_from")
    except ApiError:
        return "must be an email address or @domain"
    return None


def decode_secret(secret: str) -> bytes | None:
    """The HMAC key of a service secret (Base64, padded or not); None when it is not Base64."""
    text = secret.strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None

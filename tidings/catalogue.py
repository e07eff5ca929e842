"""The catalogue: services, templates, smart links, contact-policy groups and apps, kept in the database.

The config file seeds it at every start; the admin API changes it while running. Each process holds a
snapshot in memory, because authentication and lookups on the hot path must be dict reads, and takes a
new one when the stored revision moves. An entry is stored as the JSON of its config table, with
`service` always the owning service's id, so a service can be renamed without touching what it owns.
An app's secrets are stored with it but never shown (`shown_entry`), and a change that leaves one out
keeps it (`prepare`).
"""

import dataclasses
import itertools
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from tidings.apps import SECRET_KEYS, App, decode_secret
from tidings.config import (
    AppConfig,
    Config,
    GroupConfig,
    KeyPath,
    ServiceConfig,
    SmartlinkConfig,
    TemplateConfig,
    check_catalogue,
    check_table,
    dotted,
)
from tidings.links.smart import Smartlink
from tidings.policy.contact import Group
from tidings.services import Service, demo_service
from tidings.store.base import CatalogueEntry
from tidings.templates import Template

Entry = ServiceConfig | TemplateConfig | SmartlinkConfig | GroupConfig | AppConfig


@dataclass(frozen=True)
class Kind:
    name: str  # in the admin API's path and the catalogue table
    struct: type[Entry]
    keys: tuple[str, ...]  # the fields that name an entry, in path order
    config_path: tuple[str, ...]  # where the config checks report its problems


KINDS = {
    "services": Kind("services", ServiceConfig, ("id",), ("services",)),
    "templates": Kind("templates", TemplateConfig, ("service", "channel", "id"), ("templates",)),
    "smartlinks": Kind("smartlinks", SmartlinkConfig, ("service", "linkid"), ("smartlinks",)),
    "groups": Kind("groups", GroupConfig, ("service", "id"), ("contact_policy", "groups")),
    "apps": Kind("apps", AppConfig, ("id",), ("apps",)),
}
OWNED = ("templates", "smartlinks", "groups", "apps")  # the kinds whose entries belong to a service


class CatalogueError(Exception):
    """A change the catalogue refuses: `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems)


@dataclass(frozen=True)
class Snapshot:
    revision: int
    entries: Mapping[tuple[str, str], CatalogueEntry]  # (kind, name) -> entry
    config: Config  # the same entries as config tables, each list in name order

    @classmethod
    def of(cls, revision: int, rows: Iterable[CatalogueEntry]) -> "Snapshot":
        entries = {(r.kind, r.name): r for r in rows if r.kind in KINDS}
        tables: dict[str, list[Any]] = {kind: [] for kind in KINDS}
        for (kind, _), row in sorted(entries.items()):
            tables[kind].append(msgspec.json.decode(row.body, type=KINDS[kind].struct))
        config = Config(
            services=tables["services"],
            templates=tables["templates"],
            smartlinks=tables["smartlinks"],
            groups=tables["groups"],
            apps=tables["apps"],
        )
        return cls(revision, entries, config)

    def services(self) -> list[Service]:
        return [Service.from_config(s) for s in self.config.services]

    def templates(self) -> list[Template]:
        return [Template.from_config(t) for t in self.config.templates]

    def groups(self) -> list[Group]:
        return [Group(g.id, g.service, g.kind, g.caps) for g in self.config.groups]

    def apps(self) -> list[App]:
        return [
            App(
                id=a.id,
                service_id=a.service,
                client_secret=decode_secret(a.client_secret),
                fcm=a.fcm,
                apns=a.apns,
                webpush=a.webpush,
                wns=a.wns,
                whatsapp=a.whatsapp,
                messenger=a.messenger,
                rcs=a.rcs,
                base_dir=Path(a.base_dir or "."),
            )
            for a in self.config.apps
        ]

    def smartlinks(self) -> list[Smartlink]:
        return [
            Smartlink(k.linkid, k.service, k.url, k.ios_url, k.android_url, k.expired_url)
            for k in self.config.smartlinks
        ]

    def service_id(self, ref: str) -> str:
        """The id of the service `ref` names (by id first, then by name); `ref` itself when none does."""
        ids = [s.id for s in self.config.services]
        if ref in ids:
            return ref
        return next((s.id for s in self.config.services if s.name and s.name == ref), ref)

    def listing(self, kind: str, service: str | None = None) -> list[dict[str, Any]]:
        """The entries of one kind as the admin API shows them, optionally only one service's."""
        owner = self.service_id(service) if service else None
        out = []
        for (k, _), row in sorted(self.entries.items()):
            if k != kind:
                continue
            shown = shown_entry(row)
            if owner is None or shown.get("service", shown.get("id")) == owner:
                out.append(shown)
        return out

    def owned_by(self, service_id: str) -> list[str]:
        """What belongs to a service, e.g. ['templates svc-a/sms/otp', 'apps app-demo']."""
        found = []
        for kind in OWNED:
            for entry in getattr(self.config, kind):
                if entry.service == service_id:
                    found.append(f"{kind} {name_of(KINDS[kind], entry)}")
        return found


def name_of(kind: Kind, entry: Entry) -> str:
    return "/".join(str(getattr(entry, key)) for key in kind.keys)


def shown_entry(row: CatalogueEntry) -> dict[str, Any]:
    """An entry as the admin API shows it: its config table and where it came from. An app's secrets
    are left out (they are write-only), and its base_dir is shown only when it has one."""
    shown: dict[str, Any] = msgspec.json.decode(row.body)
    if row.kind == "apps":
        shown = _without_secrets(shown)
        if not shown.get("base_dir"):
            shown.pop("base_dir", None)
    shown["origin"] = row.origin
    return shown


def _without_secrets(table: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in table.items():
        if key in SECRET_KEYS:
            continue
        out[key] = _without_secrets(value) if isinstance(value, dict) else value
    return out


def _keep_secrets(given: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """`given` with each secret it leaves out taken from `stored`, in the app's blocks too, so that
    a listing edited and sent back (which never holds secrets) does not wipe them."""
    out = dict(given)
    for key, value in stored.items():
        if key in SECRET_KEYS and key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _keep_secrets(out[key], value)
    return out


def _merge(stored: dict[str, Any], given: dict[str, Any], depth: int) -> dict[str, Any]:
    """A PATCH: the keys `given` gives replace the stored ones; an app's blocks merge key by key too
    (`depth` 2), so changing one key of a block need not repeat the rest; null drops a block."""
    out = dict(stored)
    for key, value in given.items():
        old = stored.get(key)
        if depth > 1 and isinstance(old, dict) and isinstance(value, dict):
            value = _merge(old, value, depth - 1)
        out[key] = value
    return out


def config_entries(config: Config, known: Snapshot) -> list[CatalogueEntry]:
    """The file's services, templates, smart links, groups and apps as catalogue entries (origin 'config'),
    each `service` resolved to an id among the file's services and those already stored."""
    services = [
        *config.services,
        *(s for s in known.config.services if s.id not in {c.id for c in config.services}),
    ]
    resolver = Snapshot.of(0, (_entry(KINDS["services"], s, "config") for s in services))
    out = []
    for kind in KINDS.values():
        for entry in getattr(config, kind.name):
            if kind.name != "services":
                entry = msgspec.structs.replace(entry, service=resolver.service_id(entry.service))
            out.append(_entry(kind, entry, "config"))
    return out


def demo_entry(service: Service) -> CatalogueEntry:
    table = ServiceConfig(
        id=service.id,
        key=service.key,
        name=service.name,
        secret=service.secret,
        senderids=list(service.senderids),
    )
    return _entry(KINDS["services"], table, "demo")


def active_demo(snapshot: Snapshot) -> Service | None:
    """The active service a start without configured services made (svc-demo first), if any."""
    made = [
        s
        for s in snapshot.services()
        if s.active and getattr(snapshot.entries.get(("services", s.id)), "origin", "") == "demo"
    ]
    return min(made, key=lambda s: (s.id != "svc-demo", s.id), default=None)


def new_demo(snapshot: Snapshot) -> CatalogueEntry:
    """A new demo service, under an id and a name no service uses yet: svc-demo "demo", else
    svc-demo-2 "demo-2", and so on."""
    taken = {s.id for s in snapshot.config.services} | {s.name for s in snapshot.config.services}
    suffixes = ("" if n == 1 else f"-{n}" for n in itertools.count(1))
    suffix = next(x for x in suffixes if not {f"svc-demo{x}", f"demo{x}"} & taken)
    return demo_entry(dataclasses.replace(demo_service(), id=f"svc-demo{suffix}", name=f"demo{suffix}"))


def _entry(kind: Kind, entry: Entry, origin: str) -> CatalogueEntry:
    return CatalogueEntry(kind.name, name_of(kind, entry), msgspec.json.encode(entry), origin)


def find(snapshot: Snapshot, kind: Kind, path: Sequence[str]) -> CatalogueEntry:
    """The entry a URL names by its key fields (a service by its id or name); 404 when there is none."""
    if len(path) != len(kind.keys):
        raise CatalogueError(404, f"{kind.name} entries are named {'/'.join(kind.keys)}")
    # Only a service key may be a service's name; an app's id is never resolved as one.
    owner = snapshot.service_id(path[0]) if kind.keys[0] == "service" else path[0]
    found = snapshot.entries.get((kind.name, "/".join((owner, *path[1:]))))
    if found is None:
        raise CatalogueError(404, f"no {kind.name} entry {'/'.join(path)}")
    return found


def prepare(
    snapshot: Snapshot, kind: Kind, body: Any, current: CatalogueEntry | None = None, patch: bool = False
) -> CatalogueEntry:
    """Check an admin API body against the rest of the catalogue and return the entry to write: a new
    one, or with `current` its replacement (with `patch`, only the keys the body gives change). The
    key fields may be left out of a replacement but not changed. A new service without a key gets a
    random one. An app's secrets that a change leaves out keep their stored values."""
    if not isinstance(body, dict):
        raise CatalogueError(400, "the body must be a JSON object")
    body = {k: v for k, v in body.items() if k not in SHOWN_ONLY}  # shown in listings; not the caller's
    stored: dict[str, Any] = {}
    if current is not None:
        stored = msgspec.json.decode(current.body)
        if patch:
            merged = _merge(stored, body, 2 if kind.name == "apps" else 1)
            body = {k: v for k, v in merged.items() if k not in SHOWN_ONLY}
        if kind.name == "apps":
            body = _keep_secrets(body, stored)
        for key in kind.keys:
            given = body.setdefault(key, stored[key])
            same = snapshot.service_id(str(given)) if key == "service" else given
            if same != stored[key]:
                raise CatalogueError(400, f"{key} cannot change (it names the entry): delete and add instead")
    elif kind.name == "services" and not body.get("key"):
        body["key"] = secrets.token_hex(16)
    entry, problems = check_table(body, kind.struct)
    if entry is None:
        raise CatalogueError(400, "the body has problems", (_say(p, m) for p, m in problems))
    if not isinstance(entry, ServiceConfig):
        entry = msgspec.structs.replace(entry, service=snapshot.service_id(entry.service))
    if isinstance(entry, AppConfig):  # an app from the file keeps reading its files from the file's folder
        entry = msgspec.structs.replace(entry, base_dir=str(stored.get("base_dir", "")))
    new = _entry(kind, entry, current.origin if current else "admin")
    if current is None and (kind.name, new.name) in snapshot.entries:
        raise CatalogueError(409, f"{kind.name} entry {new.name} already exists")
    # The entry goes last, so a duplicate key or number is reported on it rather than on the other one.
    others = [e for e in getattr(snapshot.config, kind.name) if name_of(kind, e) != new.name]
    trial = msgspec.structs.replace(snapshot.config, **{kind.name: [*others, entry]})
    where = (*kind.config_path, len(others))
    problems = [(p[len(where) :], m) for p, m in check_catalogue(trial) if p[: len(where)] == where]
    if problems:
        raise CatalogueError(400, "the entry has problems", (_say(p, m) for p, m in problems))
    return new


def removable(snapshot: Snapshot, entry: CatalogueEntry) -> None:
    """Refuse (409) to delete a service that still owns templates, smart links, groups or apps."""
    if entry.kind == "services" and (owned := snapshot.owned_by(entry.name)):
        raise CatalogueError(
            409,
            f"service {entry.name} still owns {', '.join(owned)}: delete those first, or set active to false",
        )


SHOWN_ONLY = ("origin", "base_dir")  # keys a listing shows that a change may not set


def _say(path: KeyPath, message: str) -> str:
    return f"{dotted(path)}: {message}" if path else message

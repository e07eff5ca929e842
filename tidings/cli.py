"""The `tidings` command: serve, check-config, purge, smsc, and the admin commands (services, …)."""

import json
import logging
import os
import shlex
import sys
from collections.abc import Callable
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import click

from tidings import __version__
from tidings.admin_cli import COMMANDS
from tidings.client_cli import COMMANDS as CLIENT_COMMANDS
from tidings.config import Config, ConfigError, database_problem, load_config
from tidings.errors import ListenFailed
from tidings.observe import logs
from tidings.runtime import Runtime
from tidings.services import Service
from tidings.store import StoreUnavailable
from tidings.store.purge import MIN_RETAIN_DAYS, PURGE_BATCH


@click.group()
@click.version_option(__version__, prog_name="tidings")
def main() -> None:
    """Tidings: a self-hosted gateway that speaks the Webex Connect Messaging API."""


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML config file (default: $TIDINGS_CONFIG; none: a demo service on the sandbox).",
)
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default 8080).")
@click.option("--db", "database", help="Database URL (default sqlite:///tidings.db).")
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(logs.LOG_FORMATS),
    help="text, or json: one JSON object per line (time, level, logger, message, request_id).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="API processes sharing the port (more than 1 needs PostgreSQL).",
)
@click.option("--api-only", is_flag=True, help="Serve HTTP only; `tidings worker` processes send.")
def serve(
    config_path: str | None,
    host: str | None,
    port: int | None,
    database: str | None,
    log_level: str,
    log_format: logs.LogFormat,
    workers: int,
    api_only: bool,
) -> None:
    """Run the API, the workers and the notifier in one process (or the API alone, in several)."""
    config_path = config_path or os.environ.get("TIDINGS_CONFIG") or None
    config = _configure(config_path, database, log_level, log_format)
    banner = _banner(config_path)
    if host:
        config.server.host = host
    if port:
        config.server.port = port
    if config.server.database.startswith("sqlite:") and (workers > 1 or api_only):
        _fail(["--workers and --api-only need PostgreSQL: one process owns a SQLite database"])
    from tidings.server import listen, run

    try:
        if workers == 1:
            run(config, banner, dispatch=not api_only)
        else:
            from tidings.observe.metrics import finish_multiprocess, prepare_multiprocess, process_ended
            from tidings.supervise import supervise

            sock = listen(config)

            def api_process(slot: int, restarted: bool) -> None:
                try:
                    announce = _quiet if slot or restarted else banner
                    run(config, announce, dispatch=not api_only, sock=sock)
                except StoreUnavailable as exc:
                    _fail([str(exc)])

            made = prepare_multiprocess()  # one /metrics for all of them, whichever answers
            try:
                supervise(workers, api_process, ended=process_ended)
            finally:
                finish_multiprocess(made)

    except (StoreUnavailable, ListenFailed) as exc:
        _fail([str(exc)])
    except KeyboardInterrupt:
        pass


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML config file (default: $TIDINGS_CONFIG).",
)
@click.option("--db", "database", help="Database URL (postgresql://HOST/DATABASE).")
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(logs.LOG_FORMATS),
    help="text, or json: one JSON object per line (time, level, logger, message, request_id).",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address of --metrics-port.")
@click.option(
    "--metrics-port", type=click.IntRange(1, 65535), help="Serve GET /metrics on this port (default: none)."
)
def worker(
    config_path: str | None,
    database: str | None,
    log_level: str,
    log_format: logs.LogFormat,
    metrics_host: str,
    metrics_port: int | None,
) -> None:
    """Send: connectors, dispatch and notifications, no HTTP. Run any number beside `serve --api-only`."""
    config = _configure(config_path, database, log_level, log_format)
    if config.server.database.startswith("sqlite:"):
        _fail(["a worker process needs PostgreSQL: one process owns a SQLite database (use tidings serve)"])
    from tidings.observe.exposition import MetricsPortUnavailable
    from tidings.server import run_worker

    def ready(runtime: Runtime) -> None:
        routes = ", ".join(f"{channel} via {c.label}" for channel, c in runtime.routes.items())
        where = redact(config.server.database)
        click.echo(f"Tidings {__version__} worker (pid {os.getpid()}; database {where}; {routes})")
        sys.stdout.flush()

    try:
        run_worker(config, ready, (metrics_host, metrics_port) if metrics_port else None)
    except (StoreUnavailable, MetricsPortUnavailable, ListenFailed) as exc:
        _fail([str(exc)])
    except KeyboardInterrupt:
        pass


def _configure(
    config_path: str | None, database: str | None, log_level: str, log_format: logs.LogFormat = "text"
) -> Config:
    logs.configure(log_level, log_format)
    config = _load(config_path or os.environ.get("TIDINGS_CONFIG") or None)
    if database:
        if problem := database_problem(database):
            _fail([f"--db: {problem}"])
        config.server.database = database
    return config


@main.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
def check_config(file: str) -> None:
    """Check a config file; list every problem with its line; exit 1 if there is any."""
    _load(file)
    click.echo(f"{file}: OK")


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML config file (default: $TIDINGS_CONFIG): its database and [store] retain_days.",
)
@click.option(
    "--db", "database", help="Database URL (default: the config file's, else sqlite:///tidings.db)."
)
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(MIN_RETAIN_DAYS),
    help="Purge what is older than DAYS days (default: [store] retain_days).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be purged; delete nothing.")
@click.option(
    "--batch",
    default=PURGE_BATCH,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Messages looked at per transaction.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
def purge(
    config_path: str | None, database: str | None, days: int | None, dry_run: bool, batch: int, as_json: bool
) -> None:
    """Delete final messages older than the retention, with every row of theirs, and old inbound messages.

    A message goes once final (Delivered, Read, Un-Delivered, Failed, Expired, Bounce), last changed more
    than DAYS days ago, with every notification sent or given up and no short link still valid. Prints how
    many messages and rows were (with --dry-run: would be) deleted."""
    import asyncio

    from tidings.retention import purge_now

    config = _configure(config_path, database, "warning")
    days = days or config.store.retain_days
    if not days:
        _fail(["nothing to purge by: give --older-than DAYS, or set [store] retain_days in the config file"])

    def waiting() -> None:
        click.echo("Another Tidings process is purging; waiting for it to finish.", err=True)

    url = config.server.database
    try:
        report = asyncio.run(purge_now(url, days, dry_run=dry_run, batch=batch, waiting=waiting))
    except StoreUnavailable as exc:
        hint = []
        if url.startswith("sqlite:") and "in use" in str(exc):
            hint = [
                "a running server purges by itself when [store] retain_days is set;"
                " stop it to purge from here"
            ]
        _fail([str(exc), *hint])
    if as_json:
        click.echo(json.dumps(report.as_json(days)))
    else:
        for line in report.lines(days):
            click.echo(line)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=2775, show_default=True, type=click.IntRange(1, 65535), help="SMPP port.")
@click.option(
    "--control-port",
    type=click.IntRange(0, 65535),
    help="HTTP control port: POST /mo, GET /stats, GET /submits (default: port+1; 0: off).",
)
@click.option("--dlr-delay-ms", default=200, show_default=True, type=click.IntRange(0), help="Receipt delay.")
@click.option("--system-id", help="Accept only binds with this system_id (default: any).")
@click.option("--password", help="Accept only binds with this password (default: any).")
@click.option(
    "--id-format",
    default="hex",
    show_default=True,
    type=click.Choice(["hex", "dec"]),
    help="How message ids are written (receipts carry the same form).",
)
def smsc(
    host: str,
    port: int,
    control_port: int | None,
    dlr_delay_ms: int,
    system_id: str | None,
    password: str | None,
    id_format: str,
) -> None:
    """Run an SMSC simulator: binds, submit_sm, delivery receipts after a delay, MO injection.

    A destination whose last four digits are a documented SMS failure code (7203, 7207, ...) gets
    stat:UNDELIV err:<code>; one ending 7208 gets stat:EXPIRED; every other one stat:DELIVRD."""
    import asyncio

    from tidings.smpp.simulator import serve as serve_smsc
    from tidings.specs.sms import SMS_FAILURES

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    control = port + 1 if control_port is None else (control_port or None)
    try:
        asyncio.run(
            serve_smsc(
                host,
                port,
                control,
                dlr_delay_ms,
                SMS_FAILURES,
                system_id=system_id,
                password=password,
                id_format=id_format,
            )
        )
    except OSError as exc:
        _fail([f"cannot listen on {host}:{port}: {exc.strerror}"])
    except KeyboardInterrupt:
        pass


for _command in [*COMMANDS, *CLIENT_COMMANDS]:
    main.add_command(_command)


def _load(path: str | None) -> Config:
    if path is None:
        return Config()
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(exc.problems)


def _fail(problems: list[str]) -> NoReturn:
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    sys.exit(1)


def _banner(config_path: str | None) -> Callable[[Runtime], None]:
    """What `serve` prints once it listens: where, and a service to use or how to get one's key."""

    def banner(runtime: Runtime) -> None:
        config = runtime.config
        base = f"http://{config.server.host}:{config.server.port}"
        routes = ", ".join(f"{channel} via {c.label}" for channel, c in runtime.routes.items()) or "API only"
        where = redact(config.server.database)
        click.echo(f"Tidings {__version__} serving {base} (database {where}; {routes})")
        for line in _services_said(runtime, base, config_path):
            click.echo(line)
        sys.stdout.flush()

    return banner


def _services_said(runtime: Runtime, base: str, config_path: str | None) -> list[str]:
    config = runtime.config
    active = [s for s in runtime.catalogue.config.services if s.active]
    if runtime.demo is not None:
        return [
            f'Demo service "{runtime.demo.name}" (id {runtime.demo.id}), key {runtime.demo.key}',
            "Send an SMS through the sandbox:",
            "  " + demo_curl(base, runtime.demo),
        ]
    if not active:
        off = ", ".join(s.id for s in runtime.catalogue.config.services)
        return [
            f"No active service ({off}: active = false): every request is refused with 7007;"
            " set active = true in the config file, or add a service with the admin API."
        ]
    if config.services:
        return []  # the file names the services, and the user has their keys
    names = ", ".join(f'{s.id} ("{s.name}")' if s.name else s.id for s in active)
    one = len(active) == 1
    said = [
        f"No demo service: the database already holds {len(active)} active service{'' if one else 's'}"
        f" (added with the admin API): {names}"
    ]
    show = [_command_name(), "services", "show", active[0].id if one else "ID"]
    if config.server.admin_token and config_path:
        said.append(
            f"{'Its key' if one else 'Their keys'}: "
            + shlex.join([*show, "--url", base, "--config", config_path])
        )
    else:
        tidings = _command_name()
        said.append(
            f"The admin API is off, so {'its key' if one else 'their keys'} cannot be read here: add"
            f" admin_token to [server] in a config file, start with {tidings} serve --config FILE, then run"
            f" {shlex.join([*show, '--config', 'FILE'])}"
        )
    return said


def _command_name() -> str:
    """`tidings` as this process was started: `.venv/bin/tidings` from a checkout, so that a command the
    banner prints runs as shown."""
    name = sys.argv[0]
    return name if os.path.basename(name) == "tidings" else "tidings"


def _quiet(runtime: Runtime) -> None:
    """The banner is printed by the first of several API processes only."""


def redact(url: str) -> str:
    """A database URL without its password, for output."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def demo_curl(base: str, service: Service) -> str:
    body = {
        "deliverychannel": "sms",
        "channels": {"sms": {"text": "Hello from Tidings", "senderid": service.senderids[0]}},
        "destination": [{"msisdn": ["+447700900123"]}],
    }
    return shlex.join(
        [
            "curl",
            "-s",
            f"{base}/resources/v1/messaging",
            "-H",
            f"key: {service.key}",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(body, separators=(",", ":")),
        ]
    )

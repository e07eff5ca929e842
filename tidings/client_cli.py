"""`tidings send` and `tidings status`: a client of a running Tidings (or of any server speaking the same
API), with `--url` and `--key`.

`send` makes one request per address, several at a time, so that a refused address (its code and
description) is told apart from the accepted ones: SMS, email and RCS through `POST /v2/messages`, every
other channel through `POST /resources/v1/messaging` with the body given as `--json`. `status` reads
`GET /v1/messages/{transid}` and prints the status timeline and the notifications.
"""

import asyncio
import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import click
import msgspec

from tidings.schema.api_wire import MessageView
from tidings.specs import find as find_spec

V2_CHANNELS = {"sms": "msisdn", "email": "email", "rcs": "msisdn"}
RATE_LIMITED = "7020"
MAX_WAITS = 5  # 7020 answers waited out (Retry-After) before an address counts as refused
SHOW_ACCEPTED = 10  # with more addresses than this, accepted ones are listed with --verbose only


@dataclass(slots=True)
class Row:
    """One address to send to, with its substitutions; `line` is its CSV line (0: from --to)."""

    address: str
    substitutions: dict[str, str] = field(default_factory=dict)
    line: int = 0


@dataclass(slots=True)
class Result:
    row: Row
    transid: str = ""
    code: str = ""
    description: str = ""

    @property
    def accepted(self) -> bool:
        return bool(self.transid)


class Refused(click.ClickException):
    """A problem with the command's own input: said before anything is sent."""


def _default_url() -> str:
    return os.environ.get("TIDINGS_URL", "http://127.0.0.1:8080")


url_option = click.option(
    "--url",
    default=_default_url,
    show_default="$TIDINGS_URL or http://127.0.0.1:8080",
    help="Tidings' base URL.",
)
key_option = click.option(
    "--key", envvar="TIDINGS_KEY", required=True, help="The service key (default: $TIDINGS_KEY)."
)


@click.command()
@click.argument("channel")
@url_option
@key_option
@click.option("--from", "sender", help="Sender: an SMS sender id, an email From address, an RCS app id.")
@click.option("--to", "addresses", multiple=True, help="An address (repeatable).")
@click.option("--text", help="The text to send (v2 content type text).")
@click.option(
    "--json",
    "body",
    help="JSON or @FILE: SMS, email, RCS: the v2 `content` (or a whole v2 body); other channels: the v1"
    " request body (its `channels` object), whose `destination` is filled in per address.",
)
@click.option(
    "--csv",
    "csv_file",
    type=click.File("r", encoding="utf-8-sig"),
    help="CSV with a header: the address column (`to`, or the channel's address key such as msisdn or"
    " email), every other column a substitution.",
)
@click.option(
    "--concurrency", default=8, show_default=True, type=click.IntRange(1, 256), help="Requests at once."
)
@click.option("-v", "--verbose", is_flag=True, help="List every accepted address with its transid.")
def send(
    channel: str,
    url: str,
    key: str,
    sender: str | None,
    addresses: tuple[str, ...],
    text: str | None,
    body: str | None,
    csv_file: Any,
    concurrency: int,
    verbose: bool,
) -> None:
    """Send a message on CHANNEL to each address (--to, --csv), one request per address, and say which
    were accepted. Exit status 1 when any address was refused or could not be sent."""
    channel = channel.lower()
    key_name = _address_key(channel)
    rows = [Row(a) for a in addresses]
    if csv_file is not None:
        rows += _csv_rows(csv_file, key_name)
    if not rows:
        raise Refused("no address: give --to or --csv")
    if (text is None) == (body is None):
        raise Refused("give either --text or --json")
    build = _builder(channel, key_name, sender, text, _json_arg(body) if body is not None else None)
    results = asyncio.run(_send_all(url, key, build, rows, concurrency))
    _summary(results, verbose or len(results) <= SHOW_ACCEPTED)
    if not all(r.accepted for r in results):
        sys.exit(1)


def _address_key(channel: str) -> str:
    if channel in V2_CHANNELS:
        return V2_CHANNELS[channel]
    spec = find_spec(channel)
    if spec is None or spec.request is None:  # (a spec without a v1 object is reached through v2 only)
        raise Refused(f"unknown channel {channel!r}")
    return spec.request.address_keys[0]


def _csv_rows(file: Any, key_name: str) -> list[Row]:
    reader = csv.DictReader(file)
    columns = reader.fieldnames or []
    address = next((c for c in columns if c.strip().lower() in ("to", key_name.lower())), None)
    if address is None:
        raise Refused(f"{file.name}: no address column (`to` or `{key_name}`) in the header {columns}")
    rows = []
    for record in reader:
        value = (record.get(address) or "").strip()
        if not value:
            continue
        subs = {c.strip(): v for c, v in record.items() if c is not None and c != address and v is not None}
        rows.append(Row(value, subs, reader.line_num))
    return rows


def _json_arg(value: str) -> dict[str, Any]:
    where = "--json"
    if value.startswith("@"):
        where = value[1:]
        try:
            with open(where, encoding="utf-8") as f:
                value = f.read()
        except OSError as exc:
            raise Refused(f"--json {value}: {exc.strerror}") from None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise Refused(f"{where}: not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise Refused(f"{where}: a JSON object is needed")
    return parsed


Builder = Callable[[Row], tuple[str, dict[str, Any]]]


def _builder(
    channel: str, key_name: str, sender: str | None, text: str | None, given: dict[str, Any] | None
) -> Builder:
    """The path and body of the request for one row."""
    if channel in V2_CHANNELS:
        if given is not None and "content" in given:
            base = dict(given)
        else:
            base = {"content": given if given is not None else {"type": "text", "text": text}}
        base["channel"] = channel
        if sender is not None:
            base["from"] = sender

        def v2(row: Row) -> tuple[str, dict[str, Any]]:
            to: dict[str, Any] = {key_name: [row.address]}
            if row.substitutions:
                to["substitutions"] = row.substitutions
            return "/v2/messages", {**base, "to": [to]}

        return v2
    if given is None:
        raise Refused(f"{channel} goes through the v1 API: give its request body with --json")
    base = {**given, "deliverychannel": given.get("deliverychannel", channel)}

    def v1(row: Row) -> tuple[str, dict[str, Any]]:
        body = {**base, "destination": [{key_name: [row.address]}]}
        if row.substitutions:  # a template's parameters (v1 `message`)
            message = dict(body.get("message") or {})
            message["parameters"] = {**(message.get("parameters") or {}), **row.substitutions}
            body["message"] = message
        return "/resources/v1/messaging", body

    return v1


async def _send_all(url: str, key: str, build: Builder, rows: list[Row], concurrency: int) -> list[Result]:
    results: list[Result | None] = [None] * len(rows)
    queue = iter(enumerate(rows))
    headers = {"key": key, "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    with _progress(len(rows)) as advance:
        async with aiohttp.ClientSession(
            url.rstrip("/"), headers=headers, timeout=timeout, connector=connector
        ) as http:

            async def worker() -> None:
                for i, row in queue:
                    result = results[i] = await _send_one(http, build, row)
                    advance(result)

            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(rows)))))
    return [r for r in results if r is not None]


async def _send_one(http: aiohttp.ClientSession, build: Builder, row: Row) -> Result:
    path, body = build(row)
    for _ in range(MAX_WAITS + 1):
        try:
            async with http.post(path, data=json.dumps(body)) as answer:
                raw = await answer.read()
                status, retry_after = answer.status, answer.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Result(row, description=f"no answer: {exc or type(exc).__name__}")
        result = _read_answer(row, status, raw)
        if result.code != RATE_LIMITED:
            return result
        await asyncio.sleep(_seconds(retry_after))
    return result


def _seconds(retry_after: str | None) -> float:
    try:
        return min(max(float(retry_after or 1), 0.1), 30.0)
    except ValueError:
        return 1.0


def _read_answer(row: Row, status: int, raw: bytes) -> Result:
    try:
        answer = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        answer = {}
    if status == 401:
        return Result(row, code="401", description="the key was refused (HTTP 401)")
    if not isinstance(answer, dict):
        return Result(
            row, code=str(status), description=f"HTTP {status}: an answer that is not a JSON object"
        )
    response = answer.get("response")
    if isinstance(response, list) and response and isinstance(response[0], dict):  # v1: accepted
        first = response[0]
        return Result(row, str(first.get("transid", "")), str(first.get("code", "")), "Queued")
    if isinstance(response, dict):  # v1: refused
        return Result(row, "", str(response.get("code", "")), str(response.get("description", "")))
    if status in (200, 201) and answer.get("messageId"):  # v2: accepted
        return Result(row, str(answer["messageId"]), "", str(answer.get("status", "queued")))
    code = str(answer.get("code", status))
    return Result(row, "", code, str(answer.get("message") or answer.get("description") or f"HTTP {status}"))


@contextmanager
def _progress(total: int) -> Iterator[Callable[[Result], None]]:
    """A progress bar on standard error, with the count refused so far."""
    # Imported here: every `tidings` command imports this module, and only `send` draws a bar.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[refused]}"))
    with Progress(*columns, TimeRemainingColumn(), console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("send", total=total, refused="")
        refused = 0

        def advance(result: Result) -> None:
            nonlocal refused
            refused += not result.accepted
            progress.update(task, advance=1, refused=f"{refused} refused" if refused else "")

        yield advance


def _summary(results: list[Result], show_accepted: bool) -> None:
    accepted = [r for r in results if r.accepted]
    refused = [r for r in results if not r.accepted]
    for r in results:
        where = f"line {r.row.line}: " if r.row.line else ""
        if r.accepted and show_accepted:
            click.echo(f"{where}{r.row.address}: accepted {r.transid}")
        elif r.code:
            click.echo(f"{where}{r.row.address}: refused {r.code} {r.description}")
        elif not r.accepted:
            click.echo(f"{where}{r.row.address}: failed, {r.description}")
    failed = sum(1 for r in refused if not r.code)
    said = f", {failed} not sent" if failed else ""
    click.echo(f"{len(accepted)} accepted, {len(refused) - failed} refused{said}, of {len(results)}")


@click.command()
@click.argument("transid")
@url_option
@key_option
@click.option("--json", "as_json", is_flag=True, help="Print the answer as it came (JSON).")
def status(transid: str, url: str, key: str, as_json: bool) -> None:
    """Show a message's status and its timeline (GET /v1/messages/TRANSID)."""
    code, raw = asyncio.run(_get(url, key, f"/v1/messages/{transid}"))
    if code != 200:
        try:
            said = json.loads(raw).get("description", "") if raw else ""
        except (json.JSONDecodeError, AttributeError):
            said = ""
        raise click.ClickException(f"HTTP {code}{': ' + said if said else ''}")
    if as_json:
        click.echo(raw.decode())
        return
    try:
        view = msgspec.json.decode(raw, type=MessageView)
    except msgspec.DecodeError as exc:
        raise click.ClickException(f"an answer Tidings does not give: {exc}") from None
    for line in _timeline(view):
        click.echo(line)


async def _get(url: str, key: str, path: str) -> tuple[int, bytes]:
    try:
        async with (
            aiohttp.ClientSession(url.rstrip("/"), timeout=aiohttp.ClientTimeout(total=30)) as http,
            http.get(path, headers={"key": key}) as answer,
        ):
            return answer.status, await answer.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise click.ClickException(f"{url}: {exc or type(exc).__name__}") from None


def _timeline(m: MessageView) -> list[str]:
    lines = [
        f"{m.transid}  {m.channel} to {m.destination} ({m.destinationType})",
        f"status: {m.status} {m.code} {m.description}".rstrip(),
    ]
    if m.correlationid:
        lines.append(f"correlationid: {m.correlationid}")
    lines.append("timeline:")
    lines += [f"  {h.timeStamp}  {h.status:<12} {h.code:<5} {h.description}".rstrip() for h in m.history]
    if m.notifications:
        lines.append("notifications:")
        for n in m.notifications:
            http = f"HTTP {n.httpStatus}" if n.httpStatus is not None else "no answer yet"
            error = f"  ({n.lastError})" if n.lastError else ""
            tries = f"{n.attempts} {'try' if n.attempts == 1 else 'tries'}"
            lines.append(f"  {n.updatedAt}  {n.state:<8} {http}, {tries}  event {n.eventId}{error}")
    return lines


COMMANDS = [send, status]

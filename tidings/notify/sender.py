"""The notification sender process: POSTs what the main process hands it and reports each outcome.

Posting is the most CPU-hungry part of delivery; in its own process it runs on the second core, while
the process that owns the database keeps claims, retries and results. It holds no state worth keeping:
if it dies, the main process fails its posts as retryable and starts another. It never sees a secret
(bodies arrive signed).

Frames both ways are a 4-byte big-endian length and a msgpack array:
    request  [id, url, [[header, value], ...], body]      id 0 (STOP): finish what you have, then exit
    response [id, status (0 when none), error ("" when none), retry, overloaded, elapsed, retry_after]
Its stdin closing after STOP is a graceful stop; closing without it means the parent died, and nobody is
left to read the answers, so it exits at once. (The parent's pid cannot tell: a dying process closes
its files before its children are handed to a new parent.)
"""

import argparse
import asyncio
import signal
import struct
import sys

import msgspec

from tidings.memory import tune_gc
from tidings.notify.poster import Poster

_LENGTH = struct.Struct(">I")
Request = tuple[int, str, list[tuple[str, str]], bytes]
Response = tuple[int, int, str, bool, bool, float, float]
STOP = 0
STOP_REQUEST: Request = (STOP, "", [], b"")
request_decoder = msgspec.msgpack.Decoder(Request)
response_decoder = msgspec.msgpack.Decoder(Response)
_encoder = msgspec.msgpack.Encoder()


def frame(message: object) -> bytes:
    payload = _encoder.encode(message)
    return _LENGTH.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readexactly(_LENGTH.size)
        return await reader.readexactly(_LENGTH.unpack(head)[0])
    except asyncio.IncompleteReadError:
        return None


async def serve(timeout_s: float, concurrency: int, user_agent: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout.buffer)
    poster = Poster(timeout_s, concurrency, user_agent)
    pending: set[asyncio.Task[None]] = set()

    async def handle(request: Request) -> None:
        ident, url, headers, body = request
        outcome = await poster.post(url, dict(headers), body)
        if not transport.is_closing():
            answer = (ident, outcome.status or 0, outcome.error or "", outcome.retry, outcome.overloaded)
            transport.write(frame((*answer, outcome.elapsed, outcome.retry_after)))

    asked_to_stop = False
    while (data := await read_frame(reader)) is not None:
        request = request_decoder.decode(data)
        if request[0] == STOP:
            asked_to_stop = True
            continue
        task = asyncio.create_task(handle(request))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if not asked_to_stop:
        for task in pending:
            task.cancel()
    if pending:
        await asyncio.wait(pending)
    await poster.close()
    transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--user-agent", required=True)
    args = parser.parse_args()
    # Stopping is the parent's call, made with STOP; a signal meant for it is not ours.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tune_gc()
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop ships on Linux and macOS
        runner = asyncio.Runner()
    with runner:
        runner.run(serve(args.timeout, args.concurrency, args.user_agent))


if __name__ == "__main__":
    main()

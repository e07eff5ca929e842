"""Running one Tidings process: the runtime, then the HTTP server in front of it, on one event loop."""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

import uvicorn

from tidings.api.app import create_app
from tidings.api.wire import JsonErrorsHttpToolsProtocol
from tidings.config import Config
from tidings.runtime import Runtime

log = logging.getLogger("tidings")


async def serve(config: Config, on_ready: Callable[[Runtime], None]) -> None:
    """Start the runtime, serve HTTP until SIGINT or SIGTERM, then stop cleanly."""
    runtime = Runtime(config)
    await runtime.start()
    try:
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(runtime),
                host=config.server.host,
                port=config.server.port,
                lifespan="off",
                access_log=False,
                log_level="warning",
                server_header=False,
                http=JsonErrorsHttpToolsProtocol,
                timeout_graceful_shutdown=5,
            )
        )
        # uvicorn re-raises the signal that stopped it once it has shut down; with these handlers in
        # place that re-raise is harmless, and the runtime below still gets to stop cleanly.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _note_signal)
        announce = asyncio.create_task(_when_started(server, lambda: on_ready(runtime)))
        try:
            await server.serve()
        except SystemExit:  # uvicorn's way of saying it could not listen; it has logged why
            if server.started:
                raise
            raise ListenFailed(f"cannot listen on {config.server.host}:{config.server.port}") from None
        finally:
            announce.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await announce
    finally:
        await runtime.stop()


class ListenFailed(Exception):
    """The HTTP server could not bind its address (in use, not allowed, not ours)."""


def _note_signal(sig: int, frame: object) -> None:
    log.debug("%s again while stopping; already stopping", signal.Signals(sig).name)


async def _when_started(server: uvicorn.Server, callback: Callable[[], None]) -> None:
    # uvicorn offers a flag, not an event, for "listening"; polling it briefly is the supported way.
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    callback()


def run(config: Config, on_ready: Callable[[Runtime], None]) -> None:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS only
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(config, on_ready))

"""Running one Tidings process: the runtime, then the HTTP server in front of it, on one event loop."""

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable

import uvicorn

from tidings.api.app import create_app
from tidings.api.wire import JsonErrorsHttpToolsProtocol
from tidings.catalogue import active_demo, new_demo
from tidings.config import Config
from tidings.errors import ListenFailed
from tidings.memory import tune_gc
from tidings.observe import logs
from tidings.observe.exposition import metrics_server
from tidings.observe.metrics import METRICS
from tidings.runtime import STOP_GRACE_S, Runtime
from tidings.tasks import cancel
from tidings.watchdog import Deadline, leave_after

log = logging.getLogger("tidings")
# After a stop begins, the process ends by then whatever it waits on: the runtime's grace, the store's
# bounded close, and a margin (supervisors such as the benchmark send SIGKILL after 10 s).
LEAVE_AFTER_S = STOP_GRACE_S + 4.0


async def serve(
    config: Config,
    on_ready: Callable[[Runtime], None],
    *,
    dispatch: bool = True,
    sock: socket.socket | None = None,
) -> None:
    """Start the runtime, serve HTTP until SIGINT or SIGTERM, then stop cleanly. With `sock`, serve on
    that listening socket (shared with sibling processes) instead of binding one."""
    METRICS.start("serve" if dispatch else "api")
    runtime = Runtime(config, dispatch=dispatch)
    await runtime.start()
    try:
        await _usable(runtime)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(runtime),
                host=config.server.host,
                port=config.server.port,
                lifespan="off",
                access_log=False,
                log_level="warning",
                # In JSON, uvicorn's own lines go through the root logger's format like every other.
                log_config=None if logs.current_format() == "json" else uvicorn.config.LOGGING_CONFIG,
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
            async with METRICS.following(runtime):
                await server.serve(sockets=[sock] if sock is not None else None)
        except SystemExit:  # uvicorn's way of saying it could not listen; it has logged why
            if server.started:
                raise
            raise ListenFailed(f"cannot listen on {config.server.host}:{config.server.port}") from None
        finally:
            await cancel(announce)
    finally:
        deadline = leave_after(LEAVE_AFTER_S, "stopping")
        await runtime.stop()
        deadline.cancel()


async def _usable(runtime: Runtime) -> None:
    """Never serve unusable for want of a service: when the config file names none and no active service
    is left in the database (all switched off, say), make a new demo service; `runtime.demo` is the
    active demo service, if there is one, for the banner to show."""
    if runtime.config.services:
        runtime.demo = None
        return
    if not any(s.active for s in runtime.catalogue.config.services):
        await runtime.store.change_catalogue(new_demo(runtime.catalogue), "add")
        await runtime.refresh()  # another process may have added it first: then that one is used
    runtime.demo = active_demo(runtime.catalogue)


def _note_signal(sig: int, frame: object) -> None:
    log.debug("%s again while stopping; already stopping", signal.Signals(sig).name)


async def _when_started(server: uvicorn.Server, callback: Callable[[], None]) -> None:
    # uvicorn offers a flag, not an event, for "listening"; polling it briefly is the supported way.
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    callback()


async def work(
    config: Config, on_ready: Callable[[Runtime], None], metrics_at: tuple[str, int] | None = None
) -> None:
    """A worker process: connectors, dispatch and notifications, no HTTP but `GET /metrics` on
    `metrics_at` when given; until SIGINT or SIGTERM."""
    METRICS.start("worker")
    runtime = Runtime(config, role="worker")
    await runtime.start()
    stopping = _Stopping(asyncio.get_running_loop())
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stopping.on_signal)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if metrics_at is not None:
                await stack.enter_async_context(metrics_server(runtime, *metrics_at))
            await stack.enter_async_context(METRICS.following(runtime))
            on_ready(runtime)
            await stopping.asked.wait()
    finally:
        log.info("stopping")
        stopping.start_deadline("stopping")
        await runtime.stop()
        stopping.finished()


class _Stopping:
    """A worker's stop signals. Python runs a signal handler in the main thread as soon as the signal
    comes, even while the event loop is blocked in a call: the first signal starts the deadline by which
    the process ends whatever it waits on, and asks the loop for a clean stop; a second one ends the
    process at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.asked = asyncio.Event()
        self._deadline: Deadline | None = None

    def on_signal(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self._deadline is not None:
            log.warning("%s again while stopping: leaving now", name)
            leave_after(0, f"{name} again")
            return
        self.start_deadline(f"stopping on {name}")
        self.loop.call_soon_threadsafe(self.asked.set)

    def start_deadline(self, why: str) -> None:
        if self._deadline is None:
            self._deadline = leave_after(LEAVE_AFTER_S, why)

    def finished(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS only
        return None
    return uvloop.new_event_loop


def run(
    config: Config,
    on_ready: Callable[[Runtime], None],
    *,
    dispatch: bool = True,
    sock: socket.socket | None = None,
) -> None:
    tune_gc()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(config, on_ready, dispatch=dispatch, sock=sock))


def run_worker(
    config: Config, on_ready: Callable[[Runtime], None], metrics_at: tuple[str, int] | None = None
) -> None:
    tune_gc()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(work(config, on_ready, metrics_at))


def listen(config: Config) -> socket.socket:
    """The listening socket that `serve --workers N` hands to every API process."""
    host, port = config.server.host, config.server.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenFailed(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock

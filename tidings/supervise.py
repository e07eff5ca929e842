"""`tidings serve --workers N`: N API processes forked from one parent that holds the listening socket.

The parent only watches: a child that dies is started again (after a pause, so one that dies at once
does not spin), and SIGTERM or SIGINT is passed on to every child, whose own shutdown is clean.
"""

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

log = logging.getLogger("tidings")
RESTART_PAUSE_S = 1.0
STOP_GRACE_S = 30.0


def supervise(
    count: int, child: Callable[[int, bool], None], ended: Callable[[int], None] = lambda pid: None
) -> None:
    """Run `child(slot, restarted)` in `count` forked processes until SIGTERM or SIGINT; `ended(pid)`
    is told of each that ends."""
    stopping = False

    def stop(sig: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(pids):
            _signal(pid, signal.SIGTERM)

    pids: dict[int, int] = {}  # pid -> slot
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(count):
        pids[_fork(slot, False, child)] = slot
    log.info("serving with %d API processes: pids %s", count, ", ".join(map(str, pids)))
    deadline: float | None = None
    while pids:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if stopping and deadline is None:
                deadline = time.monotonic() + STOP_GRACE_S
            if deadline is not None and time.monotonic() > deadline:
                for left in list(pids):
                    _signal(left, signal.SIGKILL)
            time.sleep(0.05)
            continue
        if pid not in pids:
            continue
        ended(pid)
        slot = pids.pop(pid)
        if stopping:
            continue
        log.warning("API process %d ended (%s); starting another", pid, _how(status))
        time.sleep(RESTART_PAUSE_S)
        if not stopping:
            pids[_fork(slot, True, child)] = slot


def _fork(slot: int, restarted: bool, child: Callable[[int, bool], None]) -> int:
    pid = os.fork()
    if pid:
        return pid
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 0
    try:
        child(slot, restarted)
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:  # it has said why
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("API process %d failed", os.getpid())
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.WEXITSTATUS(status)}"

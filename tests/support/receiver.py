"""A real HTTP server that receives notifications and answers as a test scripts it."""

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW = 0  # in a script: answer 200, but only after SLOW_SECONDS (longer than the tests' notify timeout)
SLOW_SECONDS = 3.0
HANG = -1  # in a script: answer 200 only after HANG_SECONDS (outlives a server's 5 s stop grace)
HANG_SECONDS = 12.0


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what we answer: an HTTP status, or SLOW / HANG
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def info(self) -> dict[str, Any]:
        return self.json["deliveryInfoNotification"]["deliveryInfo"]

    @property
    def transid(self) -> str:
        return self.json["deliveryInfoNotification"]["transid"]


class Receiver:
    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._scripts: dict[str, list[int]] = defaultdict(list)
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status = receiver._answer(self.path)
                # Recorded on arrival (with the answer it will get), so a hanging POST is seen at once.
                hit = Hit(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, status, time.time()
                )
                with receiver._cond:
                    receiver.hits.append(hit)
                    receiver._cond.notify_all()
                if status in (SLOW, HANG):
                    time.sleep(SLOW_SECONDS if status == SLOW else HANG_SECONDS)
                    status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # The default listen backlog of 5 drops SYNs under 64 concurrent notifications; their
            # retransmits (1 s, 3 s) then outlive the tests' 2 s notify timeout.
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, statuses: list[int]) -> None:
        """Answer the next requests to `path` with these statuses (or SLOW), then 200."""
        with self._cond:
            self._scripts[path].extend(statuses)

    def _answer(self, path: str) -> int:
        with self._cond:
            queue = self._scripts.get(path)
            return queue.pop(0) if queue else 200

    def at(self, path: str) -> list[Hit]:
        with self._cond:
            return [h for h in self.hits if h.path == path]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for notifications")
                self._cond.wait(min(left, 0.2))

    def wait_count(self, path: str, count: int, timeout: float = 20.0) -> list[Hit]:
        self.wait_for(lambda: len([h for h in self.hits if h.path == path]) >= count, timeout)
        return self.at(path)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

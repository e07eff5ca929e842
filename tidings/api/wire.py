"""Answers given before the application sees a request: uvicorn's 400 for bytes that are not HTTP.

uvicorn answers those itself, in plain text and without a Request-Id; the contract wants JSON and a
Request-Id on every response, so the protocol class is swapped for one that says the same in JSON.
"""

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tidings import ids


class JsonErrorsHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        text = f"Bad Request: {msg}"
        body = msgspec.json.encode({"code": "400", "message": text, "description": text})
        head = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"request-id: " + ids.new_id().encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(head))
        self.transport.close()

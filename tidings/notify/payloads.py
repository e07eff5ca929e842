"""The `deliveryInfoNotification` body, field for field as the documents show it; a message sent with a
v1 `gtrId` adds its `"x-wx-gtrid"` (CONTRACT.md "Channel names and addresses")."""

import hashlib
import hmac
from functools import lru_cache
from urllib.parse import urlsplit

import msgspec

from tidings.clock import iso
from tidings.statuses import Outcome
from tidings.urls import is_http_url

_encoder = msgspec.json.Encoder()


def delivery_info(
    *,
    transid: str,
    channel: str,
    address: str,
    address_type: str,
    outcome: Outcome,
    at: float,
    parts: int,
    callback_data: str | None,
    correlationid: str | None,
    additional_info: str = "",
    gtrid: str | None = None,
) -> bytes:
    info: dict[str, object] = {
        "deliveryInfo": {
            "timeStamp": iso(at),
            "Description": outcome.description,
            "code": outcome.code,
            "messageCount": str(parts),
            "deliveryChannel": channel,
            "additionalInfo": additional_info,
            "destination": address,
            "destinationType": address_type,
            "deliveryStatus": outcome.status.word,
        },
        "subtid": "",
        "transid": transid,
        "callbackData": callback_data or "",
        "correlationid": correlationid or "",
    }
    if gtrid is not None:
        info["x-wx-gtrid"] = gtrid
    return _encoder.encode({"deliveryInfoNotification": info})


def signature(secret: bytes, body: bytes) -> str:
    """The X-Hub-Signature value: HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@lru_cache(maxsize=4096)
def deliverable(url: str) -> bool:
    """Whether notifications can go to `url` at all: a syntactically invalid URL gets none."""
    return is_http_url(url)


def redact_url(url: str) -> str:
    """The URL without credentials or query, which may carry tokens: safe for a log line."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"

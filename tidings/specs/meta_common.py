"""What the two Graph API channels (WhatsApp, Messenger) share in their v1 request: the object sits in
`channels["OTT-Messaging"]` under the channel's own key."""

from typing import Any

import msgspec

from tidings.errors import InvalidParameter, MandatoryMissing
from tidings.schema.common import decode_error_detail

OTT = "OTT-Messaging"
_outer = msgspec.json.Decoder(dict[str, msgspec.Raw])


def inner_object(raw: bytes, key: str, field: str) -> bytes:
    """The channel's own object inside `channels["OTT-Messaging"]` (`field` names it, e.g.
    channels.OTT-Messaging.wa): 7003 when it is missing, 7004 when the outer one is not an object."""
    try:
        outer = _outer.decode(raw)
    except msgspec.ValidationError as exc:
        parent = field.rsplit(".", 1)[0]
        raise InvalidParameter(decode_error_detail(exc, parent)) from None
    found = outer.get(key)
    if found is None or bytes(found).strip() in (b"", b"null"):
        raise MandatoryMissing(field)
    return bytes(found)


def with_text(given: dict[str, Any], key: str, inner: dict[str, Any]) -> dict[str, Any]:
    """`channels["OTT-Messaging"]` with a template's text as the channel's object when it gave none."""
    own = given.get(key)
    if isinstance(own, dict) and own:
        return given
    return {**given, key: inner}

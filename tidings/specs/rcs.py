"""RCS (Google RBM), declared once (issue 13): v2 only (`channel: "rcs"`, `to[].msisdn`, `from` the app
id), its content `tidings.schema.rcs.RcsMessage`, Webex Connect's RCS codes (`rcs_codes`), served by
the `rcs` app connector (tidings/channels/rcs/)."""

from tidings.schema.rcs import RCS_V2, RcsMessage
from tidings.specs.base import ChannelSpec
from tidings.specs.rcs_codes import EXPIRED, PLATFORM_FAILURE, RCS_FAILURES

RCS = ChannelSpec(
    name="rcs",
    request=None,  # v1 does not serve RCS: `deliverychannel: "rcs"` stays 7004 "not supported"
    content_type=RcsMessage,
    category="rcs",
    failures=RCS_FAILURES,
    expired_code=EXPIRED,
    platform_code=PLATFORM_FAILURE,
    connector="rcs",
    needs_app=True,
    explains_failures=True,  # RBM's error text goes into additionalInfo
    v2=RCS_V2,
)

"""Smart links (`[[smartlinks]]`): `{{link_<linkid>}}` in a message's text becomes a short link of its own
for each destination, `<public_url>/l/<code>`. A click redirects to the iOS or Android target by the
browser's User-Agent, else to the default; after the link's validity, to the expired target.

Codes carry 96 random bits (`secrets.token_urlsafe(12)`): unguessable. A redirect only ever goes to a
target the service configured, never to anything read from the request that clicked.
"""

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

PLACEHOLDER = re.compile(r"\{\{link_([^}]*)\}\}")
# An https URL in a text, without the punctuation that usually ends the sentence around it.
HTTPS_URL = re.compile(r"https://[^\s<>\"']+?(?=[.,;:!?)\]]*(?:\s|$))")
SHORT_LINK_S = 180 * 86_400.0  # the documents: shortened links expire after 180 days
_IOS = re.compile(r"iPhone|iPad|iPod|iOS", re.IGNORECASE)
_ANDROID = re.compile(r"Android", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Smartlink:
    linkid: int
    service_id: str
    url: str
    ios_url: str = ""
    android_url: str = ""
    expired_url: str = ""

    def target(self, user_agent: str, expired: bool) -> str:
        if expired:
            return self.expired_url or self.url
        if self.ios_url and _IOS.search(user_agent):
            return self.ios_url
        if self.android_url and _ANDROID.search(user_agent):
            return self.android_url
        return self.url


class SmartlinkRegistry:
    def __init__(self, links: Iterable[Smartlink] = ()) -> None:
        self.replace(links)

    def replace(self, links: Iterable[Smartlink]) -> None:
        # One assignment: a request reading the registry sees the old entries or the new, never a mix.
        self._by_key = {(link.service_id, link.linkid): link for link in links}

    def find(self, service_id: str, linkid: int) -> Smartlink | None:
        return self._by_key.get((service_id, linkid))


def new_code() -> str:
    return secrets.token_urlsafe(12)

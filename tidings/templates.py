"""Message templates: text with `{{name}}` placeholders, owned by a service, for one channel.

v1 names one in `message{template, parameters}`; the SMS API with `contentType: template`, its id in
`content` and its values in `substitutions`. Every placeholder must get a value: a template sent with a
hole in it is worse than a refused request.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tidings.errors import MandatoryMissing

# `{{name}}` or `$(name)`: both spellings appear in the documents' samples.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}|\$\(\s*([^()\s]+)\s*\)")


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    service_id: str
    channel: str
    text: str


class TemplateRegistry:
    def __init__(self, templates: Iterable[Template] = ()) -> None:
        self.replace(templates)

    def replace(self, templates: Iterable[Template]) -> None:
        # One assignment: a request reading the registry sees the old entries or the new, never a mix.
        self._by_key = {(t.service_id, t.channel, t.id): t for t in templates}

    def find(self, service_id: str, channel: str, template_id: str) -> Template | None:
        return self._by_key.get((service_id, channel, template_id))


def render(text: str, values: Mapping[str, object], field: str | None) -> str:
    """Fill every placeholder that has a value. One without a value is 7003 naming `<field>.<name>`;
    with `field` None it is left as written (free text, where braces may be meant literally)."""

    def fill(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        value = values.get(name)
        if value is None:
            if field is None:
                return m.group(0)
            raise MandatoryMissing(f"{field}.{name} (the template uses it)", field=f"{field}.{name}")
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return PLACEHOLDER.sub(fill, text)

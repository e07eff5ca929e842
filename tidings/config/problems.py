"""Problems found in a config, each with its key path and, when it came from a file, its line."""

import dataclasses
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]
Problems = list[tuple[KeyPath, str]]  # (the key's path, what is wrong with it)


class ConfigError(Exception):
    """The file has problems; `problems` lists each one with its key and line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Checker:
    lines: dict[tuple[str | int, ...], int]
    source: str
    problems: list[str]
    found: Problems = dataclasses.field(default_factory=list)

    def add(self, path: tuple[str | int, ...], message: str) -> None:
        line = self._line_of(path)
        where = f"{self.source}:{line}" if line else self.source
        self.problems.append(f"{where}: {dotted(path)}: {message}")
        self.found.append((path, message))

    def _line_of(self, path: tuple[str | int, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out

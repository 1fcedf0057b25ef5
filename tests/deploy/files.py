"""Readers for the deployment files (compose, HAProxy, Dockerfile, systemd units) and the
list of settings the code accepts, derived from ``gateway.settings`` itself.

No Docker engine and no systemd as PID 1 here: the files are read as their tools read
them (YAML with merge keys and ``${VAR}`` interpolation, HAProxy sections, Dockerfile
instructions, unit sections with repeated keys) and checked against the code.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yml"
HAPROXY = DOCKER / "haproxy.cfg"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SYSTEMD = DOCKER / "systemd"
ENV_EXAMPLE = ROOT / ".env.example"
# The one settings file of a machine: systemd's EnvironmentFile= and compose's env_file.
SETTINGS_FILE = "/etc/tthc/gateway.env"


# --- the settings the code accepts ------------------------------------------------------


class _Recorder(Mapping[str, str]):
    """An empty environment that remembers every variable the settings code asks for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass(frozen=True)
class Accepted:
    """Variable names ``Settings.from_mapping`` reads, and the prefixes of families
    (``ZNS_TEMPLATE_<KIND>``) it reads by scanning the environment."""

    names: frozenset[str]
    prefixes: tuple[str, ...]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self.names or any(
            name.startswith(p) and len(name) > len(p) for p in self.prefixes
        )

    def secret(self, name: str) -> bool:
        """A setting whose value is a secret (ours or a vendor's)."""
        return name == "EVENT_SOURCES" or bool(re.search(r"SECRET|TOKEN|PASSWORD|_KEY$", name))


@cache
def accepted_settings() -> Accepted:
    import gateway.settings as module

    recorder = _Recorder()
    module.Settings.from_mapping(recorder)
    prefixes = tuple(
        sorted(
            value
            for name, value in vars(module).items()
            if name.endswith("_PREFIX") and isinstance(value, str) and value.isupper()
        )
    )
    return Accepted(frozenset(recorder.asked), prefixes)


# --- compose ------------------------------------------------------------------------------

_REFERENCE = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    """A ``${VAR:?message}`` whose variable is unset or empty: compose refuses to start."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?message}``, ``${VAR?message}``."""

    def replace(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"
        name = match["braced"] or match["bare"]
        value, op, arg = env.get(name), match["op"], match["arg"] or ""
        if op == ":-":
            return value or arg
        if op == "-":
            return arg if value is None else value
        if op == ":?" and not value:
            raise MissingVariable(name, arg)
        if op == "?" and value is None:
            raise MissingVariable(name, arg)
        return value or ""

    return _REFERENCE.sub(replace, text)


def references(text: str) -> list[tuple[str, str]]:
    """``(name, operator)`` of every variable reference in ``text``."""
    return [
        (m["braced"] or m["bare"], m["op"] or "")
        for m in _REFERENCE.finditer(text)
        if not m["dollar"]
    ]


def resolve(node: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string value (not the keys) of a loaded compose document."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    return node


def load_compose() -> dict[str, Any]:
    """The compose file as loaded (YAML merge keys applied), not yet interpolated."""
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as strings (compose accepts a mapping or a list)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.partition("=") for item in raw)
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else _scalar(value) for key, value in raw.items()}


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def command(service: Mapping[str, Any]) -> list[str]:
    raw = service.get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


# --- HAProxy ---------------------------------------------------------------------------------


def haproxy_sections() -> dict[str, list[list[str]]]:
    """``"backend gateways" -> [["server", "gateway1", "gateway1:8080"], ...]``."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in HAPROXY.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if not line[0].isspace():
            current = sections.setdefault(" ".join(words), [])
        else:
            assert current is not None, f"a directive outside any section: {line!r}"
            current.append(words)
    return sections


# --- Dockerfile ------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for word, args in self.instructions if word == keyword]


def dockerfile_stages() -> list[Stage]:
    """The Dockerfile's stages, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line.strip())
        pending = ""
    stages: list[Stage] = []
    for entry in logical:
        word, _, args = entry.partition(" ")
        word, args = word.upper(), args.strip()
        if word == "FROM":
            base, _, name = args.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip()))
        elif stages:
            stages[-1].instructions.append((word, args))
    return stages


# --- systemd ---------------------------------------------------------------------------------


@dataclass
class Unit:
    path: Path
    sections: dict[str, list[tuple[str, str]]]

    @property
    def name(self) -> str:
        return self.path.name

    def values(self, section: str, key: str) -> list[str]:
        return [v for k, v in self.sections.get(section, []) if k == key]

    def value(self, section: str, key: str) -> str | None:
        found = self.values(section, key)
        return found[-1] if found else None

    def names(self, section: str, key: str) -> list[str]:
        """Space-separated unit names of every ``key=`` line."""
        return [name for line in self.values(section, key) for name in line.split()]


def read_unit(path: Path) -> Unit:
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = sections.setdefault(stripped[1:-1], [])
            continue
        key, sep, value = stripped.partition("=")
        assert sep and current is not None, f"{path.name}: not 'key=value': {line!r}"
        current.append((key.strip(), value.strip()))
    return Unit(path, sections)


def units() -> list[Unit]:
    return [read_unit(path) for path in sorted(SYSTEMD.iterdir()) if path.is_file()]

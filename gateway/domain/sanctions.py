"""The sanction ladder: what the violations ledger suggests for a violation.

The ladder comes from a TOML file (``AUDIT_LADDER_FILE``; the default ships as
``gateway/data/sanction_ladder.toml``, whose comments describe the format). For each
rule, the officer's first violation gets the first step, a repeat — the same rule again
within ``window_months`` of an earlier violation that was not dismissed — the next step,
and past the last step the last one applies again. People decide; this only suggests.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

from gateway.domain.violations import RULES
from gateway.errors import ConfigError

# Lightest first, as a person chooses among them.
SANCTIONS_IN_ORDER = (
    "nhac_nho",  # a reminder, not a disciplinary form
    "khien_trach",
    "canh_cao",
    "ha_bac_luong",
    "giang_chuc",
    "cach_chuc",
    "buoc_thoi_viec",
)
SANCTIONS = frozenset(SANCTIONS_IN_ORDER)
_VARIABLE = "AUDIT_LADDER_FILE"
_STEP_KEYS = frozenset({"sanction", "reassign", "supervisor"})


@dataclass(frozen=True, slots=True)
class Step:
    """One rung: the sanction, whether to suggest reassignment, whether to name the
    officer's direct supervisor for consideration too."""

    sanction: str
    reassign: bool = False
    supervisor: bool = False


@dataclass(frozen=True, slots=True)
class Ladder:
    """The whole ladder: the repeat window and the steps of each rule."""

    window_months: int
    rules: Mapping[str, tuple[Step, ...]]


@dataclass(frozen=True, slots=True)
class Prior:
    """An earlier violation of the same officer and rule that was not dismissed."""

    id: int
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What the ledger suggests for one violation."""

    sanction: str
    reassign: bool
    supervisor: tuple[str, str] | None  # (id, name) of the direct supervisor
    repeat_of: int | None  # the latest earlier violation this one repeats

    def as_json(self) -> dict[str, Any]:
        """The API and ledger form: ``{"sanction", "reassign", "supervisor", "repeat_of"}``."""
        supervisor = (
            {"id": self.supervisor[0], "name": self.supervisor[1]} if self.supervisor else None
        )
        return {
            "sanction": self.sanction,
            "reassign": self.reassign,
            "supervisor": supervisor,
            "repeat_of": self.repeat_of,
        }


def load_ladder(path: Path) -> Ladder:
    """Read and check a ladder file; raise ConfigError naming AUDIT_LADDER_FILE if bad."""
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        _fail(f"{path} is not valid TOML: {exc}")
    unknown = set(raw) - {"window_months", "rules"}
    if unknown:
        _fail(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    window = raw.get("window_months")
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 120:
        _fail(f"{path}: window_months must be a whole number of months from 1 to 120")
    table = raw.get("rules", {})
    if not isinstance(table, dict):
        _fail(f"{path}: rules must be a table of [rules.<rule id>]")
    rules = {rule: _steps(path, rule, entry) for rule, entry in table.items()}
    return Ladder(window, rules)


def suggest(
    ladder: Ladder,
    rule: str,
    occurred_at: datetime,
    prior: Sequence[Prior],
    supervisor: tuple[str, str] | None,
) -> Suggestion | None:
    """The suggestion for a violation of ``rule`` at ``occurred_at``.

    ``prior``: the officer's violations of the same rule already in the ledger and not
    dismissed. Those that occurred within the ladder's window of ``occurred_at`` — before
    it, at the same moment, or after it (a closure confirmed late is still a second act
    within twelve months of the first) — make this one a repeat; ``repeat_of`` is the
    latest of them. ``supervisor`` is named only when the step asks for it. None when the
    ladder has no steps for the rule.
    """
    steps = ladder.rules.get(rule)
    if not steps:
        return None
    since, until = window_around(occurred_at, ladder.window_months)
    repeats = [p for p in prior if since <= p.occurred_at <= until]
    step = steps[min(len(repeats), len(steps) - 1)]
    latest = max(repeats, key=lambda p: (p.occurred_at, p.id), default=None)
    return Suggestion(
        sanction=step.sanction,
        reassign=step.reassign,
        supervisor=supervisor if step.supervisor else None,
        repeat_of=latest.id if latest else None,
    )


def window_around(moment: datetime, months: int) -> tuple[datetime, datetime]:
    """``months`` calendar months either side of ``moment``: where repeats are counted."""
    return months_before(moment, months), months_before(moment, -months)


def months_before(moment: datetime, months: int) -> datetime:
    """The same wall-clock moment ``months`` calendar months earlier (the day clamped to
    the month's length: 31 May minus 3 months is 28 or 29 Feb)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    day = min(moment.day, _month_length(year, month))
    return moment.replace(year=year, month=month, day=day)


def _month_length(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - date(year, month, 1)).days


def _steps(path: Path, rule: str, entry: Any) -> tuple[Step, ...]:
    where = f"{path}: rules.{rule}"
    if rule not in RULES:
        _fail(f"{where}: unknown rule; expected one of: {', '.join(RULES)}")
    if not isinstance(entry, dict) or set(entry) != {"steps"}:
        _fail(f"{where} must hold exactly one key, steps")
    raw_steps = entry["steps"]
    if not isinstance(raw_steps, list) or not raw_steps:
        _fail(f"{where}.steps must be a non-empty list of {{ sanction = ... }}")
    return tuple(_step(f"{where}.steps[{i}]", raw) for i, raw in enumerate(raw_steps))


def _step(where: str, raw: Any) -> Step:
    if not isinstance(raw, dict):
        _fail(f"{where} must be a table {{ sanction = ... }}")
    unknown = set(raw) - _STEP_KEYS
    if unknown:
        _fail(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    sanction = raw.get("sanction")
    if sanction not in SANCTIONS:
        _fail(f"{where}: sanction must be one of {', '.join(sorted(SANCTIONS))}")
    flags = {key: raw.get(key, False) for key in ("reassign", "supervisor")}
    for key, value in flags.items():
        if not isinstance(value, bool):
            _fail(f"{where}: {key} must be true or false")
    return Step(sanction, flags["reassign"], flags["supervisor"])


def _fail(why: str) -> NoReturn:
    raise ConfigError(_VARIABLE, why)

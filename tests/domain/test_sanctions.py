"""The sanction ladder: the default file, repeats within the window, bad files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.domain.sanctions import (
    Ladder,
    Prior,
    Step,
    Suggestion,
    load_ladder,
    months_before,
    suggest,
)
from gateway.domain.violations import RULES
from gateway.errors import ConfigError
from gateway.settings import DEFAULT_LADDER_FILE

SUPERVISOR = ("ld-0001", "Nguyễn Hữu Đạt")
FALSE_CLOSURE = "window_months = 12\n[rules.false_closure]\n"


def moment(year: int, month: int, day: int = 15) -> datetime:
    return datetime(year, month, day, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def ladder() -> Ladder:
    return load_ladder(DEFAULT_LADDER_FILE)


def test_the_default_ladder_loads(ladder: Ladder) -> None:
    assert ladder.window_months == 12
    assert ladder.rules["false_closure"] == (
        Step("khien_trach"),
        Step("canh_cao", reassign=True, supervisor=True),
    )
    assert set(ladder.rules) <= set(RULES)


def test_a_first_false_closure_is_a_reprimand(ladder: Ladder) -> None:
    s = suggest(ladder, "false_closure", moment(2024, 4), [], SUPERVISOR)
    assert s == Suggestion("khien_trach", reassign=False, supervisor=None, repeat_of=None)
    assert s.as_json() == {
        "sanction": "khien_trach",
        "reassign": False,
        "supervisor": None,
        "repeat_of": None,
    }


def test_a_repeat_within_12_months_is_a_warning_with_reassignment_and_supervisor(
    ladder: Ladder,
) -> None:
    prior = [Prior(3, moment(2023, 6)), Prior(9, moment(2024, 1)), Prior(5, moment(2022, 1))]
    s = suggest(ladder, "false_closure", moment(2024, 4), prior, SUPERVISOR)
    assert s == Suggestion("canh_cao", reassign=True, supervisor=SUPERVISOR, repeat_of=9)
    assert s.as_json() == {
        "sanction": "canh_cao",
        "reassign": True,
        "supervisor": {"id": "ld-0001", "name": "Nguyễn Hữu Đạt"},
        "repeat_of": 9,
    }


def test_past_the_last_step_the_last_one_applies_again(ladder: Ladder) -> None:
    prior = [Prior(i, moment(2024, i)) for i in range(1, 4)]
    s = suggest(ladder, "false_closure", moment(2024, 5), prior, SUPERVISOR)
    assert s is not None and (s.sanction, s.repeat_of) == ("canh_cao", 3)


def test_after_12_months_it_is_a_first_time_again(ladder: Ladder) -> None:
    prior = [Prior(1, moment(2023, 4, 14))]
    s = suggest(ladder, "false_closure", moment(2024, 4, 15), prior, SUPERVISOR)
    assert s == Suggestion("khien_trach", reassign=False, supervisor=None, repeat_of=None)
    # Exactly 12 months earlier is still within the window.
    s = suggest(ladder, "false_closure", moment(2024, 4, 15), [Prior(1, moment(2023, 4, 15))], None)
    assert s is not None and (s.sanction, s.repeat_of) == ("canh_cao", 1)


def test_a_recorded_violation_that_occurred_later_within_the_window_is_a_prior(
    ladder: Ladder,
) -> None:
    """A closure confirmed late is still a second act within twelve months of the first."""
    s = suggest(ladder, "false_closure", moment(2024, 4), [Prior(1, moment(2024, 6))], None)
    assert s is not None and (s.sanction, s.repeat_of) == ("canh_cao", 1)
    same = suggest(ladder, "false_closure", moment(2024, 4), [Prior(2, moment(2024, 4))], None)
    assert same is not None and (same.sanction, same.repeat_of) == ("canh_cao", 2)
    far = suggest(ladder, "false_closure", moment(2024, 4), [Prior(3, moment(2025, 5))], None)
    assert far is not None and (far.sanction, far.repeat_of) == ("khien_trach", None)


def test_the_supervisor_is_named_only_when_the_step_says_so(ladder: Ladder) -> None:
    prior = [Prior(1, moment(2024, 1))]
    s = suggest(ladder, "phone_missing", moment(2024, 2), prior, SUPERVISOR)
    assert s == Suggestion("khien_trach", reassign=False, supervisor=None, repeat_of=1)


def test_a_rule_without_steps_gets_no_suggestion(ladder: Ladder) -> None:
    assert suggest(ladder, "overdue_without_apology", moment(2024, 2), [], None) is None


def test_months_before_clamps_to_the_months_length() -> None:
    assert months_before(datetime(2024, 5, 31, 8, tzinfo=UTC), 3) == datetime(
        2024, 2, 29, 8, tzinfo=UTC
    )
    assert months_before(datetime(2024, 1, 10, tzinfo=UTC), 12) == datetime(2023, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("window_months = [", "not valid TOML"),
        ("[rules.false_closure]\nsteps = [{ sanction = 'khien_trach' }]", "window_months"),
        ("window_months = 0", "window_months"),
        ("window_months = 12\nextra = 1", "unknown key(s) extra"),
        ("window_months = 12\nrules = 3", "rules must be a table"),
        (
            "window_months = 12\n[rules.no_such_rule]\nsteps = [{ sanction = 'canh_cao' }]",
            "unknown rule",
        ),
        ("window_months = 12\n[rules.false_closure]\nsteps = []", "non-empty list"),
        (
            "window_months = 12\n[rules.false_closure]\nsteps = [{ sanction = 'phat' }]",
            "sanction must be one of",
        ),
        (
            f"{FALSE_CLOSURE}steps = [{{ sanction = 'canh_cao', reassign = 'yes' }}]",
            "reassign must be true or false",
        ),
        (
            f"{FALSE_CLOSURE}steps = [{{ sanction = 'canh_cao', boss = true }}]",
            "unknown key(s) boss",
        ),
        ("window_months = 12\n[rules.false_closure]\nlevels = []", "exactly one key, steps"),
    ],
)
def test_a_bad_ladder_file_names_the_setting_and_why(
    tmp_path: Path, content: str, why: str
) -> None:
    path = tmp_path / "ladder.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_ladder(path)
    assert caught.value.variable == "AUDIT_LADDER_FILE"
    assert why in caught.value.reason
    assert str(path) in caught.value.reason


def test_a_missing_ladder_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^AUDIT_LADDER_FILE: cannot read"):
        load_ladder(tmp_path / "absent.toml")

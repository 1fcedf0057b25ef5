"""Settings fail at start with the variable's name; defaults are what the README says."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import Settings


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.from_mapping({}, workdir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'tthc.sqlite3'}"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.sms_providers == ("log",)
    assert settings.quiet_hours is not None
    assert (settings.quiet_hours.start, settings.quiet_hours.end) == (time(21), time(7))
    assert settings.time_zone == "Asia/Ho_Chi_Minh"
    assert settings.event_sources == {}


def test_event_sources_and_providers() -> None:
    settings = Settings.from_mapping(
        {"EVENT_SOURCES": "onestop:s3cret-one, dvc:0ther-two", "SMS_PROVIDERS": "esms, speedsms"}
    )
    assert settings.event_sources == {"onestop": "s3cret-one", "dvc": "0ther-two"}
    assert settings.sms_providers == ("esms", "speedsms")


def test_quiet_hours_empty_disables() -> None:
    assert Settings.from_mapping({"QUIET_HOURS": ""}).quiet_hours is None


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("HTTP_PORT", "eighty", "whole number"),
        ("HTTP_PORT", "70000", "between 1 and 65535"),
        ("DATABASE_URL", "mysql://x/y", "sqlite:///path or postgresql://"),
        ("REDIS_URL", "localhost:6379", "redis://"),
        ("EVENT_SOURCES", "onestop", "entry 1 must be 'id:secret'"),
        ("EVENT_SOURCES", "a:longsecret1,a:longsecret2", "repeated"),
        ("EVENT_SOURCES", "onestop:short", "too short"),
        ("EVENT_SOURCES", "bad id:longsecret1", "not valid"),
        ("SMS_PROVIDERS", "esms,twilio", "unknown provider 'twilio'"),
        ("SMS_PROVIDERS", "esms,esms", "listed twice"),
        ("SMS_PROVIDERS", " , ", "at least one"),
        ("QUIET_HOURS", "9pm-7am", "21:00-07:00"),
        ("QUIET_HOURS", "25:00-07:00", "not a real time"),
        ("QUIET_HOURS", "07:00-07:00", "equal"),
        ("TIME_ZONE", "Mars/Olympus", "unknown time zone"),
        ("LOG_FORMAT", "xml", "json"),
        ("LOG_LEVEL", "LOUD", "DEBUG"),
        ("HOLIDAY_OVERRIDES_FILE", "/nonexistent/overrides.toml", "no such file"),
        ("CLOCK_SKEW_SECONDS", "0", "between 1 and 3600"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({variable: value})
    assert caught.value.variable == variable
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{variable}: ")


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("HTTP_PORT=9000\nHTTP_HOST=0.0.0.0\n")
    settings = Settings.from_env({"HTTP_PORT": "9100"}, dotenv_path=dotenv)
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", 9100)


def test_a_malformed_sanction_ladder_stops_the_start_naming_the_variable(tmp_path: Path) -> None:
    from gateway.http.app import create_app

    ladder = tmp_path / "ladder.toml"
    ladder.write_text('window_months = 12\n[rules.false_closure]\nsteps = [{ sanction = "x" }]\n')
    settings = Settings.from_mapping({"AUDIT_LADDER_FILE": str(ladder)}, workdir=tmp_path)
    with pytest.raises(ConfigError) as caught:
        create_app(settings)
    assert caught.value.variable == "AUDIT_LADDER_FILE"
    assert "rules.false_closure.steps[0]: sanction must be one of" in caught.value.reason
    missing = {"AUDIT_LADDER_FILE": str(tmp_path / "nowhere.toml")}
    with pytest.raises(ConfigError, match="AUDIT_LADDER_FILE"):
        Settings.from_mapping(missing, workdir=tmp_path)

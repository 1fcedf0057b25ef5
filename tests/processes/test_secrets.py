"""Weak secrets of our own stop `tthc serve` and `tthc worker` before they start.

Ours: each EVENT_SOURCES secret, SMS_WEBHOOK_SECRET and OPS_TOKEN. Shorter than 32
characters or equal to an example value from the documentation is refused, naming the
variable and never printing the value. Vendors' credentials are not judged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from gateway.errors import ConfigError
from gateway.local.redis_server import free_port
from gateway.settings import EXAMPLE_SECRETS, MIN_SECRET_LENGTH, Settings

ROOT = Path(__file__).resolve().parents[2]
STRONG = "k" * MIN_SECRET_LENGTH
SHORT = "short-but-valid-31-characters-x"  # 31: accepted by settings, refused at start


def _settings(**env: str) -> Settings:
    return Settings.from_mapping({"EVENT_SOURCES": f"onestop:{STRONG}", **env})


def test_strong_or_unset_secrets_pass() -> None:
    _settings().check_secrets()
    _settings(SMS_WEBHOOK_SECRET=STRONG, OPS_TOKEN=STRONG + "x").check_secrets()
    Settings.from_mapping({}).check_secrets()  # nothing configured: nothing to judge
    # Vendor credentials are the vendor's: a short eSMS key or Zalo secret is not ours.
    _settings(
        SMS_PROVIDERS="esms",
        ESMS_API_KEY="k1",
        ESMS_SECRET_KEY="s1",
        ZALO_APP_ID="123",
        ZALO_APP_SECRET="abc",
        ZALO_OA_SECRET_KEY="def",
    ).check_secrets()


@pytest.mark.parametrize(
    ("variable", "env"),
    [
        ("EVENT_SOURCES", {"EVENT_SOURCES": f"onestop:{STRONG},dvc:{SHORT}"}),
        ("SMS_WEBHOOK_SECRET", {"SMS_WEBHOOK_SECRET": SHORT}),
        ("OPS_TOKEN", {"OPS_TOKEN": SHORT}),
    ],
)
def test_a_short_secret_is_refused_by_name(variable: str, env: dict[str, str]) -> None:
    assert len(SHORT) == MIN_SECRET_LENGTH - 1
    with pytest.raises(ConfigError) as refused:
        _settings(**env).check_secrets()
    assert refused.value.variable == variable
    assert "shorter than 32 characters" in str(refused.value)
    assert SHORT not in str(refused.value)
    if variable == "EVENT_SOURCES":
        assert "'dvc'" in str(refused.value)


@pytest.mark.parametrize("example", sorted(EXAMPLE_SECRETS))
@pytest.mark.parametrize("variable", ["EVENT_SOURCES", "SMS_WEBHOOK_SECRET", "OPS_TOKEN"])
def test_an_example_value_is_refused_whatever_its_length(variable: str, example: str) -> None:
    value = f"onestop:{example}" if variable == "EVENT_SOURCES" else example
    with pytest.raises(ConfigError) as refused:
        Settings.from_mapping({variable: value}).check_secrets()
    assert refused.value.variable == variable
    assert "example value" in str(refused.value)
    assert example not in str(refused.value)


def test_env_example_as_shipped_does_not_start() -> None:
    """Copying .env.example without choosing secrets must not give a running gateway."""
    values = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    with pytest.raises(ConfigError) as refused:
        Settings.from_mapping(values, workdir=ROOT).check_secrets()
    assert refused.value.variable == "EVENT_SOURCES"
    # Every secret example the file shows is one the check knows.
    for name in ("SMS_WEBHOOK_SECRET", "OPS_TOKEN"):
        assert values.get(name, "") in EXAMPLE_SECRETS | {""}


def _run(command: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "gateway", *command.split()]
    full = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'never-created.sqlite3'}",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "HTTP_PORT": str(free_port()),
        "EVENT_SOURCES": f"onestop:{STRONG}",
        **env,
    }
    return subprocess.run(
        args, env=full, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ("serve", "EVENT_SOURCES", f"onestop:{SHORT}"),
        ("serve", "OPS_TOKEN", "change-me-to-a-long-random-secret"),
        ("worker --burst", "SMS_WEBHOOK_SECRET", SHORT),
        ("worker --burst", "EVENT_SOURCES", "onestop:change-me-to-a-long-random-secret"),
    ],
)
def test_serve_and_worker_refuse_to_start(
    tmp_path: Path, command: str, variable: str, value: str
) -> None:
    result = _run(command, tmp_path, **{variable: value})
    assert result.returncode == 2, result.stderr
    assert f"tthc: configuration error: {variable}: " in result.stderr
    secret = value.partition(":")[2] if variable == "EVENT_SOURCES" else value
    assert secret not in result.stderr + result.stdout
    # Refused before anything ran: no database was opened, no traceback.
    assert not (tmp_path / "never-created.sqlite3").exists()
    assert "Traceback" not in result.stderr

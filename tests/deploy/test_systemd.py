"""docker/systemd/: the units of a province that runs plain Linux servers.

``systemd-analyze verify`` (when present) reads them as systemd would, with the install
prefix pointed at this checkout's virtual environment so that ExecStart= can be checked
for an executable; the rest is checked against the code: the commands are the CLI's,
every Environment= variable is a setting, settings and secrets come from
/etc/tthc/gateway.env, migrations run once before the rest, exactly one scheduler.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli.main import _parser
from gateway.processes import server
from tests.deploy.files import SETTINGS_FILE, SYSTEMD, Unit, accepted_settings, units

PREFIX = "/opt/tthc/venv"
TTHC = f"{PREFIX}/bin/tthc"
MIGRATE = "tthc-migrate.service"


def _services() -> dict[str, Unit]:
    return {u.name: u for u in units() if u.name.endswith(".service")}


def _exec(unit: Unit) -> list[str]:
    (line,) = unit.values("Service", "ExecStart")
    return shlex.split(line)


def _long_running() -> dict[str, Unit]:
    return {name: u for name, u in _services().items() if name != MIGRATE}


def test_the_expected_units_are_there() -> None:
    assert sorted(u.name for u in units()) == [
        "tthc-gateway.service",
        "tthc-migrate.service",
        "tthc-scheduler.service",
        "tthc-worker@.service",
        "tthc.target",
    ]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """Unknown keys, bad values, missing executables and missing units all fail; the
    prefix is this checkout's venv so that ExecStart= names an executable."""
    venv_tthc = Path(sys.executable).parent / "tthc"
    assert venv_tthc.is_file()
    for unit in units():
        text = unit.path.read_text().replace(TTHC, str(venv_tthc))
        (tmp_path / unit.name).write_text(text)
    names = [f"./{u.name}" for u in units()] + ["./tthc-worker@1.service"]
    done = subprocess.run(
        ["systemd-analyze", "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not output, output
    # The same check refuses a unit with a misspelt key (so it does judge the files).
    broken = tmp_path / "tthc-gateway.service"
    broken.write_text(broken.read_text().replace("Restart=", "Restrat="))
    done = subprocess.run(
        ["systemd-analyze", "verify", "./tthc-gateway.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Unknown key 'Restrat'" in done.stderr


def test_every_exec_start_is_a_command_of_the_cli() -> None:
    commands = {}
    for name, unit in _services().items():
        args = _exec(unit)
        assert args[0] == TTHC, name
        parsed = _parser().parse_args(args[1:])
        commands[name] = (parsed.command, getattr(parsed, "no_cron", None))
    assert commands == {
        "tthc-gateway.service": ("serve", None),
        "tthc-migrate.service": ("migrate", None),
        "tthc-scheduler.service": ("worker", False),
        "tthc-worker@.service": ("worker", True),
    }


def test_settings_come_from_the_settings_file_and_are_settings() -> None:
    accepted = accepted_settings()
    for name, unit in _services().items():
        # Without "-": a missing settings file stops the unit rather than starting bare.
        assert unit.values("Service", "EnvironmentFile") == [SETTINGS_FILE], name
        for line in unit.values("Service", "Environment"):
            for pair in shlex.split(line):
                key, _, value = pair.partition("=")
                assert key in accepted, f"{name}: {key} is not a setting"
                assert not accepted.secret(key), f"{name}: the secret {key} is in the unit"
                assert value, name


def test_processes_run_as_an_unprivileged_user() -> None:
    for name, unit in _services().items():
        assert unit.value("Service", "User") == "tthc", name
        assert unit.value("Service", "NoNewPrivileges") == "yes", name
        assert unit.value("Service", "CapabilityBoundingSet") == "", name
        assert unit.value("Service", "ProtectSystem") == "strict", name
        assert unit.value("Service", "StateDirectory") == "tthc", name


def test_migrations_run_once_before_the_gateway_and_the_workers() -> None:
    migrate = _services()[MIGRATE]
    assert migrate.value("Service", "Type") == "oneshot"
    # Once per boot (or per `systemctl restart tthc-migrate.service` after an upgrade),
    # not at each restart of a gateway or worker.
    assert migrate.value("Service", "RemainAfterExit") == "yes"
    for name, unit in _long_running().items():
        assert MIGRATE in unit.names("Unit", "Requires"), name
        assert MIGRATE in unit.names("Unit", "After"), name


def test_one_scheduler_and_workers_as_instances() -> None:
    running_cron = [
        name
        for name, unit in _services().items()
        if _exec(unit)[1:2] == ["worker"] and "--no-cron" not in _exec(unit)
    ]
    assert running_cron == ["tthc-scheduler.service"], "exactly one worker runs the cron"
    assert "@" not in running_cron[0]
    assert "--no-cron" in _exec(_services()["tthc-worker@.service"])


def test_the_target_starts_everything_and_every_named_unit_exists() -> None:
    (target,) = [u for u in units() if u.name == "tthc.target"]
    wanted = target.names("Unit", "Wants")
    assert {"tthc-gateway.service", "tthc-scheduler.service"} <= set(wanted)
    assert [w for w in wanted if w.startswith("tthc-worker@")]
    assert target.values("Install", "WantedBy") == ["multi-user.target"]
    files = {p.name for p in SYSTEMD.iterdir()}
    for unit in units():
        for key in ("Wants", "Requires", "After", "PartOf"):
            for name in unit.names("Unit", key):
                if not name.startswith("tthc"):
                    continue
                template = name.split("@")[0] + "@.service" if "@" in name else name
                assert template in files, f"{unit.name}: {key}={name} has no unit file"
    for name, unit in _long_running().items():
        assert unit.names("Unit", "PartOf") == ["tthc.target"], name
        assert unit.values("Install", "WantedBy") == ["tthc.target"], name


def test_restarts_except_when_the_gateway_refuses_to_start() -> None:
    # Exit status 2 is the code's "refused" (configuration, unmigrated database):
    # starting again would fail the same way.
    refused = str(server._REFUSED)
    for name, unit in _long_running().items():
        assert unit.value("Service", "Restart") == "on-failure", name
        assert unit.value("Service", "RestartPreventExitStatus") == refused, name
        # The main process stops its children (HTTP processes, the cron) itself.
        assert unit.value("Service", "KillMode") == "mixed", name

"""The `tthc` command as an operator runs it: real processes, real ports."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from gateway.local.redis_server import free_port
from gateway.storage import migrate

pytestmark = pytest.mark.slow


PREFIX = f"tthc-test-cli-{os.getpid()}:"


@pytest.fixture(autouse=True)
def forget_cli_queues(redis_server: str) -> Iterator[None]:
    """`tthc serve` enqueues under this module's prefix; nothing stays behind."""
    yield
    redis = Redis.from_url(redis_server)
    try:
        for name in (f"{PREFIX}urgent", f"{PREFIX}bulk"):
            Queue(name, connection=redis).delete(delete_jobs=True)
    finally:
        redis.close()


def _env(tmp_path: Path, redis_server: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_KEY_PREFIX": PREFIX,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "REDIS_URL": redis_server,
        "EVENT_SOURCES": "onestop:s3cret-onestop-4f1c9a7e2b8d6035e1a4",
        "HTTP_PORT": str(free_port()),
        **extra,
    }


def _tthc(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _readyz_answers(env: dict[str, str], count: int) -> dict[str, object]:
    """Poll /readyz until it has answered 200 ``count`` times; return the last body."""
    url = f"http://127.0.0.1:{env['HTTP_PORT']}/readyz"
    deadline = time.monotonic() + 30
    answered, body = 0, {}
    while answered < count:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = json.load(response)
                answered += response.status == 200
        except OSError:
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.1)
    return body


def test_serve_refuses_an_unmigrated_database(tmp_path: Path, redis_server: str) -> None:
    result = _tthc("serve", env=_env(tmp_path, redis_server), timeout=30)
    assert result.returncode == 2
    assert "run `tthc migrate` first" in result.stderr
    assert "schema revision none" in result.stderr


def test_bad_setting_stops_with_its_name(tmp_path: Path, redis_server: str) -> None:
    result = _tthc("migrate", env=_env(tmp_path, redis_server, HTTP_PORT="http"), timeout=30)
    assert result.returncode == 2
    assert "HTTP_PORT: must be a whole number" in result.stderr


def test_migrate_then_serve_is_ready(tmp_path: Path, redis_server: str) -> None:
    env = _env(tmp_path, redis_server)
    migrated = _tthc("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert f"revision {migrate.head_revision()}" in migrated.stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = _readyz_answers(env, 1)
        assert body == {"status": "ok"}  # the detail needs OPS_TOKEN (tests/http)
    finally:
        server.terminate()
        server.wait(10)


def test_demo_runs_without_any_redis_and_shows_dossiers(tmp_path: Path) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    env = _env(tmp_path, dead_redis)
    env.pop("EVENT_SOURCES")
    demo = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--dossiers", "4", "--delay", "0", "--exit"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    assert "started a private one" in demo.stdout
    posted = re.findall(r"\d\d/\d\d \d\d:\d\d  (dossier\.\S+)\s+HTTP (\d+)", demo.stdout)
    assert len(posted) >= 12
    assert {status for _, status in posted} <= {"200", "202"}
    assert posted[0][0] == "dossier.received"
    # With --exit nothing is left running: no command or page to point at.
    assert " get /v1/dossiers/" not in demo.stdout
    # Every notice went through the worker and a fake, and its receipt came back.
    kinds = re.findall(r"notices=(\S+)", demo.stdout)
    created = sum(len(k.split(",")) for k in kinds if k not in ("-", "(re-posted)"))
    lines = re.findall(r"^    (sms|zns|zalo|no channel) +(.*)$", demo.stdout, re.MULTILINE)
    states: dict[str, int] = {}
    for _, counts in lines:
        for n, state in re.findall(r"(\d+) (\w+)", counts):
            states[state] = states.get(state, 0) + int(n)
    # A dossier whose phone was unusable has its notice kept as no_recipient.
    assert set(states) <= {"delivered", "no_recipient"}, states
    assert states.get("delivered", 0) + states.get("no_recipient", 0) == created
    assert states.get("delivered", 0) > 0
    assert "watch the SMS arrive at the fake eSMS:  http://127.0.0.1:" in demo.stdout
    # A scripted citizen follows the OA, proves ownership, sees the dossier and reports.
    chat = demo.stdout.partition("On Zalo, ")[2]
    assert "Xin chào ông/bà" in chat
    assert "- Thủ tục: " in chat
    assert re.search(r"Đã tiếp nhận phản ánh số PA-\d{4}-\d{6}", chat), chat
    assert "Chat as " not in demo.stdout


def test_serve_with_two_workers_shares_the_port_and_stops_cleanly(
    tmp_path: Path, redis_server: str
) -> None:
    env = _env(tmp_path, redis_server, HTTP_WORKERS="2")
    assert _tthc("migrate", env=env).returncode == 0
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _readyz_answers(env, 20)
    finally:
        server.terminate()
        assert server.wait(20) == 0


def test_malformed_holiday_overrides_stop_the_start(tmp_path: Path, redis_server: str) -> None:
    overrides = tmp_path / "overrides.toml"
    overrides.write_text('[2026]\ndays_off = [{date = "2026-13-01", name = "x"}]\n')
    env = _env(tmp_path, redis_server, HOLIDAY_OVERRIDES_FILE=str(overrides))
    assert _tthc("migrate", env=env).returncode == 0
    result = _tthc("serve", env=env, timeout=30)
    assert result.returncode == 2
    assert "HOLIDAY_OVERRIDES_FILE" in result.stderr
    assert "days_off entry 1" in result.stderr


def test_zalo_set_refresh_token_replaces_the_stored_pair_and_clears_the_alert(
    tmp_path: Path, redis_server: str
) -> None:
    env = _env(
        tmp_path,
        redis_server,
        ZALO_APP_ID="2334789304983807556",
        ZALO_APP_SECRET="app-secret",
        ZALO_OA_SECRET_KEY="oa-secret",
    )
    assert _tthc("migrate", env=env).returncode == 0
    redis = Redis.from_url(redis_server)
    try:
        redis.set(f"{PREFIX}zalo:alert", "refresh token refused")
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "zalo", "set-refresh-token"],
            env=env,
            input="fresh-refresh-token-1\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert redis.get(f"{PREFIX}zalo:alert") is None
    finally:
        redis.delete(f"{PREFIX}zalo:alert")
        redis.close()
    with sqlite3.connect(tmp_path / "cli.sqlite3") as db:
        rows = db.execute("SELECT app_id, access_token, refresh_token FROM zalo_tokens").fetchall()
    assert rows == [("2334789304983807556", "", "fresh-refresh-token-1")]
    # Bad input changes nothing.
    refused = _tthc("zalo", "set-refresh-token", "--token", "two words", env=env)
    assert refused.returncode == 1
    assert "one refresh token" in refused.stderr

"""``tthc demo`` as a newcomer runs it: twice on the same ``var/``, stopped by a signal.

Each test runs the real command in a subprocess, in a directory of its own, with a
private redis-server (or, without one installed, its own key prefix on the test Redis).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest

from gateway.local.demo import Outcome, find_problems
from gateway.local.redis_server import free_port
from tests.services import redis_url

# The chat script's five acts, and the report the last one opens.
CHAT_ACTS = 6  # follow, code, share, one-time code, report button, description


@pytest.fixture
def demo_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "EVENT_", "HTTP_", "ZALO_", "SMS_", "LOG_"))
    }
    env["HTTP_PORT"] = str(free_port())
    if shutil.which("redis-server"):
        env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nobody: a private one
        yield env
    else:
        url, private = redis_url()
        env["REDIS_URL"] = url
        env["REDIS_KEY_PREFIX"] = f"tthc-demo-test-{uuid.uuid4().hex[:8]}:"
        yield env
        if private is not None:
            private.stop()


def demo(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--delay", "0", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_a_second_run_on_the_same_directory_still_answers_the_citizen(
    tmp_path: Path, demo_env: dict[str, str]
) -> None:
    first = demo(tmp_path, demo_env, "--exit", "--dossiers", "6")
    assert first.returncode == 0, first.stdout + first.stderr
    # The hotline confirms the citizen's report; the ledger suggests a first sanction.
    assert "records the finding: confirmed" in first.stdout
    assert "false_closure by Trần Thị Bình (cc-0123)" in first.stdout
    assert "suggested sanction: khiển trách\n" in first.stdout
    assert "\nAgencies, " in first.stdout and "Sở Tư pháp" in first.stdout
    second = demo(tmp_path, demo_env, "--exit", "--dossiers", "7")
    out = second.stdout
    assert second.returncode == 0, out + second.stderr
    assert "6 dossiers from earlier runs kept" in out
    chat = out[out.index("\nOn Zalo, ") : out.index("\nSummary: ")]
    acts = chat.split("\n  👤 ")[1:]
    assert len(acts) == CHAT_ACTS
    assert all("\n  🏛  " in act for act in acts), chat
    assert "Đã tiếp nhận phản ánh số PA-" in acts[-1]
    # The same clerk's second false closure within 12 months: the next step of the ladder.
    assert "suggested sanction: cảnh cáo (a repeat of entry " in out
    assert "reassignment; supervisor Nguyễn Hữu Đạt to be considered)" in out
    assert "THE DEMO IS BROKEN" not in out
    assert "7 dossiers posted (6 scripted, 1 random)" in out
    for rule in ("phone_missing", "phone_landline", "second_rescheduling"):
        assert f"\n    {rule} " in out


def test_a_second_demo_on_the_same_directory_is_refused_while_the_first_runs(
    tmp_path: Path, demo_env: dict[str, str]
) -> None:
    """Two demos on one var/ would share a database, Redis keys and workers: the second
    one's citizen would be answered by the first one's worker and fake Zalo."""
    (tmp_path / "var").mkdir()
    with (tmp_path / "var" / "demo.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused = demo(tmp_path, demo_env, "--exit", "--dossiers", "6")
    assert refused.returncode == 2
    assert "another demo is running on" in refused.stderr
    assert not (tmp_path / "var" / "tthc.sqlite3").exists()


def test_exit_prints_no_dead_links_and_no_log_lines(
    tmp_path: Path, demo_env: dict[str, str]
) -> None:
    result = demo(tmp_path, demo_env, "--exit", "--dossiers", "6")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Chat as" not in result.stdout and " get /v1/dossiers/" not in result.stdout
    for line in (result.stdout + result.stderr).splitlines():
        assert not line.lstrip().startswith('{"ts"'), line
    log = tmp_path / "var" / "demo.log"
    assert f"logs (JSON) go to {log}" in result.stdout
    assert log.read_text("utf-8").count('"ts"') > 0


def test_every_broken_part_is_named() -> None:
    views = [
        {
            "code": "000.00.15.H19-261202-0001",
            "notices": [
                {"kind": "receipt", "state": "delivered"},
                {"kind": "invitation", "state": "failed", "last_error": "zns: -124"},
                {"kind": "apology", "state": "queued"},
            ],
            "flags": [{"rule": "phone_missing"}],
        }
    ]
    outcome = Outcome(codes=["000.00.15.H19-261202-0001"], views=views)
    find_problems(outcome, {"zalo": "refresh token refused"})
    assert outcome.problems == [
        "the audit rule phone_landline did not fire",
        "the audit rule pause_during_consultation did not fire",
        "the audit rule withdrawal_without_approval did not fire",
        "the audit rule second_rescheduling did not fire",
        "notice invitation of 000.00.15.H19-261202-0001 is failed: zns: -124",
        "notice apology of 000.00.15.H19-261202-0001 is queued",
        "/readyz reports a zalo alert: refresh token refused",
    ]


def _descendants(pid: int) -> set[int]:
    children: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, set()).add(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), set()):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_every_process_the_demo_started(
    tmp_path: Path, demo_env: dict[str, str], signum: int
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--dossiers", "6", "--delay", "0.3"],
        cwd=tmp_path,
        env=demo_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("The one-stop-shop posts"):
                break
        deadline = time.monotonic() + 20
        children: set[int] = set()
        # The worker starts its cron child a moment after it starts itself.
        while time.monotonic() < deadline and len(children) < 2:
            children = _descendants(process.pid)
            time.sleep(0.2)
        assert len(children) >= 2, children
        process.send_signal(signum)
        process.wait(60)
        rest = process.stdout.read()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.2)
        assert not [pid for pid in children if _alive(pid)], rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def staying_demo(cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """``tthc demo`` left running, as a newcomer leaves it: its output up to "Everything
    keeps running" (150 s at most); stopped with Ctrl+C afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--dossiers", "6", "--delay", "0"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 150
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Everything keeps running") or time.monotonic() > deadline:
                break
        yield "".join(lines)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def test_the_demo_prints_console_logins_that_work(tmp_path: Path, demo_env: dict[str, str]) -> None:
    with staying_demo(tmp_path, demo_env) as output:
        console = re.search(r"The staff console \(.*\): (http://\S+/console/)", output)
        logins = dict(
            re.findall(r"^  (?:hotline|auditor|admin)\s+(demo-\w+) / (\S+)$", output, re.M)
        )
        assert console is not None, output[-3000:]
        assert set(logins) == {"demo-hotline", "demo-auditor", "demo-admin"}, output[-3000:]
        browser = build_opener(HTTPCookieProcessor(CookieJar()))  # a person's browser
        base = console.group(1)
        form = browser.open(base + "login", timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        fields = {
            "username": "demo-hotline",
            "password": logins["demo-hotline"],
            "csrf_token": token.group(1),
        }
        with browser.open(base + "login", urlencode(fields).encode(), timeout=10) as landed:
            assert landed.url.endswith("/console/reports"), landed.url
        # The citizen's report, which the demo's hotline officer resolved.
        done = browser.open(base + "reports?status=resolved", timeout=10).read().decode()
        assert "PA-" in done and "Báo kết thúc sai" in done


@pytest.mark.parametrize(
    ("database_url", "redis", "remote"),
    [
        ("sqlite:///var/tthc.sqlite3", "redis://127.0.0.1:6379/0", []),
        ("postgresql://tthc:pw@localhost/tthc", "unix:///run/redis.sock", []),
        ("postgresql://tthc@[::1]:5432/tthc", "redis://127.0.0.2:6380/1", []),
        ("postgresql:///tthc?host=/run/postgresql", "redis://localhost/0", []),
        (
            "postgresql://tthc:pw@db.example.org/tthc",
            "rediss://:pw@10.0.0.5:6380/0",
            ["DATABASE_URL (host db.example.org)", "REDIS_URL (host 10.0.0.5)"],
        ),
    ],
)
def test_what_counts_as_local(database_url: str, redis: str, remote: list[str]) -> None:
    from gateway.local.demo import remote_services
    from gateway.settings import Settings

    settings = Settings.from_mapping({"DATABASE_URL": database_url, "REDIS_URL": redis})
    assert remote_services(settings) == remote


def test_a_database_or_redis_elsewhere_is_refused_unless_allowed(
    tmp_path: Path, demo_env: dict[str, str]
) -> None:
    remote_db = "postgresql://tthc:db-password@db.tthc-demo.invalid:5432/tthc"
    env = {**demo_env, "DATABASE_URL": remote_db}
    refused = demo(tmp_path, env, "--exit", "--dossiers", "6")
    assert refused.returncode == 2
    assert "DATABASE_URL (host db.tthc-demo.invalid)" in refused.stderr
    assert "--allow-remote" in refused.stderr and "db-password" not in refused.stderr
    assert not (tmp_path / "var").exists()  # nothing was started or written
    refused = demo(tmp_path, {**demo_env, "REDIS_URL": "redis://redis.tthc-demo.invalid/0"})
    assert refused.returncode == 2 and "REDIS_URL (host redis.tthc-demo.invalid)" in refused.stderr
    # Allowed, it goes on (and fails later only because that host does not exist).
    allowed = demo(tmp_path, env, "--exit", "--dossiers", "6", "--allow-remote")
    assert "not on this machine" not in allowed.stderr
    assert (tmp_path / "var" / "demo.log").exists()
    assert allowed.returncode != 0


def test_the_demo_prints_a_metrics_line_with_its_own_ops_token(
    tmp_path: Path, demo_env: dict[str, str]
) -> None:
    # A weak OPS_TOKEN: the demo makes its own.
    with staying_demo(tmp_path, {**demo_env, "OPS_TOKEN": "too-short"}) as output:
        curl = re.search(r'curl -H "Authorization: Bearer (\S+)" (http://\S+/metrics)', output)
        assert curl is not None, output[-3000:]
        token, url = curl.groups()
        assert len(token) >= 32 and token != "too-short"
        assert "THE DEMO IS BROKEN" not in output
        opener = build_opener()
        with opener.open(Request(url, headers={"Authorization": f"Bearer {token}"})) as answer:
            assert "tthc_http_request_seconds" in answer.read().decode()
        with pytest.raises(HTTPError) as refused:
            opener.open(url, timeout=10)
        refused.value.close()
        assert refused.value.code == 401

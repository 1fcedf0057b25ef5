"""The short form of the chaos run (``make chaos`` runs the long one): 500 events while
``tthc serve`` and a worker are SIGKILLed, Redis and PostgreSQL crash and restart and
both SMS vendors fail for a while; no accepted event may be lost, no notice lost or sent
twice, no citizen left unanswered or answered twice.

The citizens write first, with the events, and the faults come once they are done: a
drain interrupted by a kill holds that citizen's lock for 60 s (``gateway/chat/inbox.py``),
which would double this test's time. Chat under faults is the long run's part (and
``tests/chat/test_crash_replies.py`` pins the two failures it found)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not all(shutil.which(b) for b in ("initdb", "pg_ctl", "redis-server")),
    reason="the chaos run needs PostgreSQL's initdb/pg_ctl and redis-server on this machine",
)
def test_short_chaos_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    summary_path = tmp_path / "chaos.json"
    command = [
        sys.executable,
        "-m",
        "bench.chaos",
        "--events=500",
        # Paced, so that the faults land while events are still coming in.
        "--rate=40",
        "--chat-users=10",
        "--chat-messages=4",
        "--think-seconds=0",
        "--chat-first",
        "--kills=2",
        "--redis-restarts=1",
        "--postgres-restarts=1",
        "--outages=2",
        "--drain-seconds=90",
        "--seed=12",
        f"--json={summary_path}",
    ]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=140, check=False
    )
    print(done.stdout)  # the run's report: shown with -rP, and on failure
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, output
    summary = json.loads(summary_path.read_text())

    events = summary["events"]
    assert events["sent"] >= 500
    assert events["accepted"] == events["on_timeline"] == events["sent"]
    assert events["lost"] == events["refused"] == events["given_up"] == 0

    notices = summary["notices"]
    assert notices["total"] > 100
    assert notices["lost"] == notices["duplicated"] == 0
    assert notices["delivered"] > notices["total"] // 2
    assert notices["delivered"] + notices["failed"] + notices["unknown"] == notices["total"]

    chat = summary["chat"]
    assert chat["sent"] == chat["acknowledged"] == chat["answered"] == 40
    assert chat["unanswered"] == chat["unanswered_unknown"] == chat["twice"] == 0

    # Every kind of fault was really injected.
    what = " | ".join(f["what"] for f in summary["faults"])
    assert len(summary["faults"]) == 6, what
    for fault in ("SIGKILL tthc serve", "SIGKILL tthc worker", "SIGKILL redis-server"):
        assert fault in what
    assert "PostgreSQL stopped" in what
    assert "esms answers HTTP 500" in what or "speedsms answers HTTP 500" in what

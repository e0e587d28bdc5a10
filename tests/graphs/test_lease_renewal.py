"""A run's owner renews its lease while a long step runs, so no other host takes over a
live run; a dead owner's lease still ends, and its run can be taken over.

The driver is a real process whose owner string names another machine (so only its lease,
never its pid, says whether it lives), with a lease of half a second; the other host is a
second registry on the same file with its own owner string."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from corral import open_workspace

LEASE = 0.5
MACHINE_A = "machine-a.example:4242:0badc0ffee00"
MACHINE_B = "machine-b.example:4242:feedfacefeed"
TEAM = """\
version: 1
name: long
schemas:
  Q: {fields: {text: str}}
agents:
  - {id: slow, kind: function, function: "steps:slow", input: Q, output: Q}
flow:
  entry: slow
  input: Q
  output: Q
  edges: [{from: slow, to: END, schema: Q}]
"""
STEPS = """\
import time
from pathlib import Path

HERE = Path(__file__).parent


def slow(q):
    (HERE / "started").write_text("x")
    deadline = time.monotonic() + 60
    while not (HERE / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return q
"""
DRIVER = f"""\
import asyncio
import sys

from corral import load_team

with load_team("team.yaml").compile(db="w.db") as app:
    app.runs.lease = {LEASE}
    app.runs.owner = "{MACHINE_A}"
    if sys.argv[1] == "arun":
        result = asyncio.run(app.arun({{"text": "x"}}, run_id="r1"))
    else:
        result = app.run({{"text": "x"}}, run_id="r1")
    print(result.status)
"""


def drive(write: Callable[..., Path], how: str) -> subprocess.Popen[str]:
    write("team.yaml", TEAM)
    write("steps.py", STEPS)
    driver = write("driver.py", DRIVER)
    proc = subprocess.Popen(
        [sys.executable, str(driver), how],
        cwd=driver.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (driver.parent / "started").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


@pytest.mark.parametrize("how", ["run", "arun"])
def test_a_step_longer_than_three_leases_is_not_taken_over(
    write: Callable[..., Path], tmp_path: Path, how: str
) -> None:
    proc = drive(write, how)
    other = open_workspace(tmp_path / "w.db")
    try:
        other.runs.owner = MACHINE_B  # `corral resume r1` on machine B, again and again
        start = time.monotonic()
        tries = 0
        while time.monotonic() < start + 4 * LEASE:  # the step runs on, past 3 leases
            assert other.runs.take_over("r1") == MACHINE_A  # refused: its lease is live
            tries += 1
            time.sleep(0.05)
        (tmp_path / "release").write_text("x")  # the step ends
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() == "completed"
        record = other.runs.get("r1")
        assert record is not None
        assert (record.status, record.owner) == ("completed", MACHINE_A)
        assert tries >= 20
    finally:
        proc.kill()
        other.close()


def test_a_dead_owner_s_lease_still_ends_and_its_run_is_taken_over(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    proc = drive(write, "run")
    other = open_workspace(tmp_path / "w.db")
    try:
        other.runs.owner = MACHINE_B
        assert other.runs.take_over("r1") == MACHINE_A  # alive: refused
        os.kill(proc.pid, signal.SIGKILL)  # the owner's machine dies mid-step
        proc.wait(10)
        killed = time.monotonic()
        while other.runs.take_over("r1") is not None:  # its lease is no longer renewed
            assert time.monotonic() < killed + 10 * LEASE, "a dead owner's lease never ended"
            time.sleep(0.05)
        record = other.runs.get("r1")
        assert record is not None
        assert (record.status, record.owner) == ("running", MACHINE_B)
        assert time.monotonic() - killed <= LEASE + 2.0  # within a lease (and a poll)
    finally:
        proc.kill()
        other.close()

"""Two processes resuming one run at the same instant: taking the run over is one atomic
step, so exactly one resumes and the other is told who has it."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral import load_team
from corral.keys import HANDOVER_KEY
from tests.conftest import run_cli

TEAM = """\
version: 1
name: flaky
schemas:
  Q: {fields: {text: str}}
agents:
  - {id: step, kind: function, function: "rules:step"}
flow:
  entry: step
  input: Q
  output: Q
  edges: [{from: step, to: END, schema: Q}]
"""
RULES = """\
import time
from pathlib import Path

FLAG = Path(__file__).with_name("failed-once")


def step(q):
    if not FLAG.exists():
        FLAG.write_text("x")
        raise RuntimeError("the first attempt fails")
    with Path(__file__).with_name("ran").open("a") as log:
        log.write("x")
    time.sleep(0.5)  # long enough for both resumers to be at it together
    return q
"""


def _resume(team_file: str, db: str, run_id: str, barrier: Any, out: Any) -> None:
    team = load_team(team_file)
    with team.compile(db=db) as app:
        barrier.wait()
        try:
            out.put(app.resume(run_id).status)
        except Exception as exc:  # reported to the test
            out.put(f"{type(exc).__name__}: {exc}")


def test_exactly_one_of_two_simultaneous_resumes_goes_ahead(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write("rules.py", RULES)
    team_file = write("team.yaml", TEAM)
    db = tmp_path / "w.db"
    with load_team(team_file).compile(db=db) as app:
        failed = app.run({"text": "q"}, run_id="r1")
    assert failed.status == "failed"
    barrier = multiprocessing.Barrier(2)
    out: Any = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_resume, args=(str(team_file), str(db), "r1", barrier, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = sorted(out.get(timeout=10) for _ in procs)
    assert outcomes[1] == "completed", outcomes
    assert outcomes[0].startswith("InputError: run 'r1' is running in process"), outcomes
    assert (tmp_path / "ran").read_text() == "x"  # the step ran once


CHAIN = """\
version: 1
name: chain
schemas:
  Q: {fields: {text: str}}
agents:
  - {id: a, kind: function, function: "steps:same"}
  - {id: b, kind: function, function: "steps:same"}
  - {id: c, kind: function, function: "steps:same"}
flow:
  entry: a
  input: Q
  output: Q
  edges:
    - {from: a, to: b, schema: Q}
    - {from: b, to: c, schema: Q}
    - {from: c, to: END, schema: Q}
"""


class Ticking:
    """A clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 1_000_000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_the_driver_renews_its_lease_as_steps_pass_and_only_then(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write("steps.py", "def same(q):\n    return q\n")
    team = load_team(write("team.yaml", CHAIN))
    for step, renews in ((0.0, False), (15.0, True)):  # a lease of 60 s renews every 20 s
        clock = Ticking(step)
        with team.compile(db=tmp_path / f"w{step}.db", clock=clock) as app:
            renewed: list[tuple[str, bool]] = []
            real = app.runs.renew

            def spy(
                run_id: str,
                real: Callable[[str], bool] = real,
                renewed: list[tuple[str, bool]] = renewed,
            ) -> bool:
                renewed.append((run_id, real(run_id)))
                return renewed[-1][1]

            app.runs.renew = spy  # type: ignore[method-assign]
            assert app.run({"text": "x"}, run_id="r1").status == "completed"
            assert bool(renewed) is renews
            assert all(found == ("r1", True) for found in renewed)  # its own lease each time


@pytest.mark.parametrize("handed_over", [False, True])
def test_a_run_cancelled_while_it_runs_is_recorded_cancelled_listed_and_resumes(
    write: Callable[..., Path], tmp_path: Path, handed_over: bool
) -> None:
    write(
        "steps.py",
        "import time\nfrom pathlib import Path\n\n\ndef same(q):\n    return q\n\n\n"
        "def slow(q):\n    if not Path(__file__).with_name('slept').exists():\n"
        "        Path(__file__).with_name('slept').write_text('x')\n"
        "        time.sleep(3)\n    return q\n",
    )
    file = write(
        "team.yaml",
        CHAIN.replace(
            'id: b, kind: function, function: "steps:same"',
            'id: b, kind: function, function: "steps:slow"',
        ),
    )
    db = tmp_path / "w.db"
    with load_team(file).compile(db=db) as app:

        async def cancel_midway() -> None:
            # a worker's shutdown hands its run over (HANDOVER_KEY says so): not a cancel
            config: Any = {"configurable": {HANDOVER_KEY: lambda: handed_over}}
            running = asyncio.create_task(app.arun({"text": "x"}, run_id="r1", config=config))
            while not (tmp_path / "slept").exists():
                await asyncio.sleep(0.02)
            running.cancel()  # what Temporal's and the server's cancel do to a run
            with pytest.raises(asyncio.CancelledError):
                await running

        asyncio.run(cancel_midway())
        record = app.runs.get("r1")
        assert record is not None
        if handed_over:  # another worker goes on with it: the record never said cancelled
            assert (record.status, record.errors) == ("running", [])
            return
        assert record.status == "cancelled"
        assert record.errors[0]["message"].startswith("cancelled: ")
    listed = run_cli("runs", "--db", db, "--json", cwd=tmp_path)
    assert listed.code == 0, listed.stderr
    assert [r["status"] for r in json.loads(listed.stdout)] == ["cancelled"]
    resumed = run_cli("resume", "r1", "--db", db, "--team", file, "--json", cwd=tmp_path)
    assert resumed.code == 0, resumed.stderr  # resumable like a halted run
    assert resumed.json["status"] == "completed"
    assert resumed.json["path"] == ["a", "b", "c"]


def test_a_driver_whose_run_was_taken_over_leaves_the_record_to_its_new_owner(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    # A stalled worker: Temporal gave its attempt to another worker, which stamped itself
    # the owner and completed the run; then the stalled one wakes up and its step fails
    # (or its activity is cancelled). Its ending must not overwrite the new owner's.
    write(
        "steps.py",
        "from pathlib import Path\nimport time\n\n\ndef same(q):\n    return q\n\n\n"
        "def stalls(q):\n    here = Path(__file__).parent\n"
        "    if not (here / 'stalled').exists():\n"
        "        (here / 'stalled').write_text('x')\n"
        "        while not (here / 'wake').exists():\n            time.sleep(0.02)\n"
        "        raise RuntimeError('woke up too late')\n    return q\n",
    )
    file = write(
        "team.yaml",
        CHAIN.replace(
            'id: b, kind: function, function: "steps:same"',
            'id: b, kind: function, function: "steps:stalls"',
        ),
    )
    db = tmp_path / "w.db"
    team = load_team(file)
    with team.compile(db=db) as stalled, team.compile(db=db) as retry:

        async def go() -> str:
            first = asyncio.create_task(stalled.arun({"text": "x"}, run_id="r1"))
            while not (tmp_path / "stalled").exists():
                await asyncio.sleep(0.02)
            retry.runs.update("r1", "running")  # Temporal's retry outranks the lease
            done = await retry.aresume("r1")
            assert done.status == "completed"
            (tmp_path / "wake").write_text("x")
            return (await first).status

        assert asyncio.run(go()) == "failed"  # what the stalled driver saw
        record = retry.runs.get("r1")
        assert record is not None
        assert (record.status, record.output, record.path) == (
            "completed",
            {"text": "x"},
            ["a", "b", "c"],
        )


def test_a_driver_that_finds_its_run_taken_over_stops_driving_it(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write(
        "steps.py",
        "from pathlib import Path\nimport time\n\n\ndef same(q):\n    return q\n\n\n"
        "def stalls(q):\n    here = Path(__file__).parent\n"
        "    if not (here / 'stalled').exists():\n"
        "        (here / 'stalled').write_text('x')\n"
        "        while not (here / 'wake').exists():\n            time.sleep(0.02)\n"
        "    return q\n\n\n"
        "def last(q):\n    with (Path(__file__).parent / 'last-ran').open('a') as log:\n"
        "        log.write('x')\n    return q\n",
    )
    file = write(
        "team.yaml",
        CHAIN.replace(
            'id: b, kind: function, function: "steps:same"',
            'id: b, kind: function, function: "steps:stalls"',
        ).replace(
            'id: c, kind: function, function: "steps:same"',
            'id: c, kind: function, function: "steps:last"',
        ),
    )
    db = tmp_path / "w.db"
    team = load_team(file)
    # the stalled driver's clock moves 15 s a read: its lease (60 s) is due at each step
    with team.compile(db=db, clock=Ticking(15.0)) as stalled, team.compile(db=db) as other:

        async def go() -> Any:
            first = asyncio.create_task(stalled.arun({"text": "x"}, run_id="r1"))
            while not (tmp_path / "stalled").exists():
                await asyncio.sleep(0.02)
            other.runs.update("r1", "running")  # its lease ended: another took it over
            assert (await other.aresume("r1")).status == "completed"
            (tmp_path / "wake").write_text("x")
            return await first

        result = asyncio.run(go())
        assert result.status == "failed"
        assert "was taken over by another process" in result.errors[0].message
        assert (tmp_path / "last-ran").read_text() == "x"  # the last step ran once
        record = other.runs.get("r1")
        assert record is not None
        assert record.status == "completed"

"""Two processes resuming one run at the same instant: taking the run over is one atomic
step, so exactly one resumes and the other is told who has it."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corral import load_team

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
    assert outcomes[0].startswith("InputError: run 'r1' is being resumed by process"), outcomes
    assert (tmp_path / "ran").read_text() == "x"  # the step ran once

"""Crash trials: SIGKILL a team mid-run, resume it, and check nothing was lost or redone.

Each trial forks a child (the parent has already imported everything, so a child
costs milliseconds) that runs a 6-node corral team on a fresh workspace file. The
parent kills it with SIGKILL at a random instant, or the child kills itself at a
chosen point: before a task's writes, between the writes and the checkpoint, or
right after a checkpoint commits. A second child resumes the run. Then:

- ``PRAGMA integrity_check`` is ok;
- every checkpoint the killed child saw acknowledged is still in the file;
- the resumed run's output equals that of an uninterrupted run;
- no node whose step was acknowledged ran again.

    python benchmarks/crash_trials.py [--trials 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from corral import AgentSpec, EdgeSpec, FlowSpec, SchemaSpec, Team
from corral.workspace import CorralSaver

NODES = 6
POINTS = ("random", "before_writes", "between", "after_checkpoint")


class Work(BaseModel):
    log: str
    count: int


def node(name: str) -> Any:
    def run(work: Work) -> dict[str, Any]:
        with open(work.log, "a") as f:  # one short append per run of the node
            f.write(f"run {name}\n")
        time.sleep(0.002)
        return {"log": work.log, "count": work.count + 1}

    return run


def team() -> Team:
    ids = [f"n{i}" for i in range(NODES)]
    edges = [EdgeSpec(from_=a, to=b, schema_name="Work") for a, b in itertools.pairwise(ids)]
    edges.append(EdgeSpec(from_=ids[-1], to="END", schema_name="Work"))
    return Team(
        name="crash",
        schemas={"Work": SchemaSpec(model=Work)},
        agents=[AgentSpec(id=i, kind="function", function=node(i)) for i in ids],
        flow=FlowSpec(entry="n0", input="Work", output="Work", edges=edges),
    )


class KillingSaver(CorralSaver):
    """Records acknowledged checkpoints; kills its own process at a chosen point."""

    def __init__(self, path: Path, ack_log: Path, point: str, at_call: int) -> None:
        super().__init__(path)
        self.ack_log, self.point, self.at_call = ack_log, point, at_call
        self.calls = 0

    def _maybe_die(self, point: str) -> None:
        if point == self.point:
            self.calls += 1
            if self.calls == self.at_call:
                os.kill(os.getpid(), signal.SIGKILL)

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        self._maybe_die("before_writes")
        super().put_writes(config, writes, task_id, task_path)
        self._maybe_die("between")

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        result = super().put(config, checkpoint, metadata, new_versions)
        fd = os.open(self.ack_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{checkpoint['id']} {metadata.get('step')}\n".encode())
        os.close(fd)
        self._maybe_die("after_checkpoint")
        return result


def child_run(db: Path, log: Path, ack: Path, point: str, at_call: int, *, resume: bool) -> None:
    """In the forked child: run (or resume) the team, then exit."""
    app = team().compile(db=db)
    app.graph.checkpointer = KillingSaver(db, ack, point if not resume else "-", at_call)
    if resume:
        result = app.resume("trial")
    else:
        result = app.run({"log": str(log), "count": 0}, run_id="trial")
    (db.parent / ("resumed.json" if resume else "ran.json")).write_text(
        json.dumps(result.to_dict())
    )
    os._exit(0)


def fork(fn: Any, *args: Any, **kwargs: Any) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            fn(*args, **kwargs)
        finally:
            os._exit(1)
    return pid


@dataclass
class Report:
    trials: int = 0
    killed: int = 0
    by_point: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def trial(workdir: Path, rng: random.Random, point: str, reference: int, report: Report) -> None:
    db, log, ack = workdir / "w.db", workdir / "nodes.log", workdir / "ack.log"
    at_call = rng.randint(1, NODES)
    pid = fork(child_run, db, log, ack, point, at_call, resume=False)
    if point == "random":
        time.sleep(rng.uniform(0.0, 0.06))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    report.trials += 1
    report.killed += killed
    report.by_point[point] += 1
    where = f"trial {report.trials} ({point}, call {at_call})"
    if not db.exists():  # killed before the workspace existed: nothing to check or resume
        return
    acked = [line.split() for line in (ack.read_text().splitlines() if ack.exists() else [])]
    with sqlite3.connect(db) as conn:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            report.failures.append(f"{where}: integrity_check failed")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        stored: set[str] = set()
        started = 0
        if {"cp_checkpoints", "runs"} <= tables:  # else killed while creating the schema
            stored = {r[0] for r in conn.execute("SELECT checkpoint_id FROM cp_checkpoints")}
            started = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    conn.close()
    lost = [cp for cp, _ in acked if cp not in stored]
    if lost:
        report.failures.append(f"{where}: acknowledged checkpoints lost: {lost}")
    if not started:
        return
    runs_before = Counter(log.read_text().split("\n") if log.exists() else [])
    pid = fork(child_run, db, log, ack, point, at_call, resume=True)
    os.waitpid(pid, 0)
    resumed = workdir / "resumed.json"
    if not resumed.exists():
        report.failures.append(f"{where}: resume did not finish")
        return
    result = json.loads(resumed.read_text())
    if result["status"] != "completed" or result["output"]["count"] != reference:
        report.failures.append(f"{where}: resumed to {result['status']} {result['output']}")
    done_steps = max((int(step) for _, step in acked), default=-1)
    runs_after = Counter(log.read_text().split("\n"))
    for i in range(NODES):
        name = f"run n{i}"
        # checkpoint step s acknowledged => nodes n0 .. n(s-2) had finished by then
        if i <= done_steps - 2 and runs_after[name] != runs_before[name]:
            report.failures.append(f"{where}: n{i} ran again after its step was saved")
        if runs_after[name] < 1:
            report.failures.append(f"{where}: n{i} never ran")


def reference_output(workdir: Path) -> int:
    pid = fork(
        child_run,
        workdir / "w.db",
        workdir / "nodes.log",
        workdir / "ack.log",
        "-",
        0,
        resume=False,
    )
    os.waitpid(pid, 0)
    return int(json.loads((workdir / "ran.json").read_text())["output"]["count"])


def run_trials(trials: int, seed: int = 1, *, progress: bool = False) -> Report:
    """Run ``trials`` crash trials, cycling through the kill points."""
    rng = random.Random(seed)
    report = Report()
    with tempfile.TemporaryDirectory() as tmp:
        reference = reference_output(Path(tmp))
    for i in range(trials):
        with tempfile.TemporaryDirectory() as tmp:
            trial(Path(tmp), rng, POINTS[i % len(POINTS)], reference, report)
        if progress and (i + 1) % 50 == 0:
            print(
                f"  {i + 1}/{trials} trials, {report.killed} killed, "
                f"{len(report.failures)} failures",
                file=sys.stderr,
                flush=True,
            )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    report = run_trials(args.trials, args.seed, progress=True)
    print(
        f"crash trials: {report.trials} run, {report.killed} killed mid-run "
        f"({dict(report.by_point)}), {len(report.failures)} failures, "
        f"{time.perf_counter() - start:.0f} s"
    )
    for failure in report.failures[:20]:
        print("  " + failure)
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()

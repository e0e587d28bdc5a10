"""The runaway team: agents scripted to delegate forever are stopped by the guards."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, run_cli

RUNAWAY = ROOT / "examples" / "runaway" / "team.yaml"
GOAL = ROOT / "examples" / "runaway" / "goal.json"


def created(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT assignee, depth FROM tasks WHERE status != 'refused'"
        ).fetchall()


def test_runaway_halts_within_the_limits(tmp_path: Path) -> None:
    done = run_cli("run", RUNAWAY, "--input", f"@{GOAL}", "--db", "w.db", "--json", cwd=tmp_path)
    assert done.code == 3, done.stderr
    result = done.json
    assert result["status"] == "halted"
    first = result["errors"][0]
    assert (first["guard"], first["limit"]) == ("task_rate", 50)
    assert first["seen"] > 50
    assert "50" in first["message"]
    tasks = created(tmp_path / "w.db")
    assert 0 < len(tasks) <= 50
    assert result["tasks_created"] == len(tasks)
    assert max(depth for _, depth in tasks) <= 3
    assert {g["guard"] for g in result["guards_tripped"]} >= {"task_rate"}
    assert "resume with: corral resume" in done.stderr
    # each cause once, with how often it tripped
    causes = [(g["guard"], g["agent"], g["limit"], g["policy"]) for g in result["guards_tripped"]]
    assert len(causes) == len(set(causes))
    with sqlite3.connect(tmp_path / "w.db") as conn:
        (trips,) = conn.execute(
            "SELECT count(*) FROM events WHERE run_id = ? AND kind = 'guard_trip'",
            (result["run_id"],),
        ).fetchone()
        calls, tokens = conn.execute(
            "SELECT count(*), SUM(input_tokens + output_tokens) FROM usage "
            "WHERE run_id = ? AND status = 'settled'",
            (result["run_id"],),
        ).fetchone()
    assert sum(g["count"] for g in result["guards_tripped"]) == trips > len(causes)
    # the halted run reports the calls it made, as the ledger holds them
    usage = result["usage"]
    assert calls > 0
    assert (usage["llm_calls"], usage["input_tokens"] + usage["output_tokens"]) == (calls, tokens)
    listed = run_cli("runs", "--db", "w.db", "--json", cwd=tmp_path)
    assert listed.json[0]["usage"] == usage

    early = run_cli("resume", result["run_id"], "--db", "w.db", "--json", cwd=tmp_path)
    assert early.code == 3
    assert "cooling down" in early.json["errors"][0]["message"]
    assert "resume after" in early.json["errors"][0]["message"]
    assert len(created(tmp_path / "w.db")) == len(tasks)  # nothing ran


def test_four_processes_together_stay_within_the_rate(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "corral",
                "run",
                str(RUNAWAY),
                "--input",
                f"@{GOAL}",
                "--db",
                "w.db",
                "--json",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 3, err
        assert "database is locked" not in err
        assert json.loads(out.strip().splitlines()[-1])["status"] == "halted"
    tasks = created(tmp_path / "w.db")
    assert 0 < len(tasks) <= 50  # one workspace-wide rate across every process


def test_after_the_cooldown_a_resumed_run_goes_on(tmp_path: Path) -> None:
    import time

    from corral import load_team

    text = (
        RUNAWAY.read_text()
        .replace(
            "task_rate: {count: 50, per_seconds: 3600}", "task_rate: {count: 10, per_seconds: 1}"
        )
        .replace("cooldown_seconds: 600", "cooldown_seconds: 1")
    )
    (tmp_path / "script.yaml").write_text((RUNAWAY.parent / "script.yaml").read_text())
    (tmp_path / "team.yaml").write_text(text)
    with load_team(tmp_path / "team.yaml").compile(db=tmp_path / "w.db") as app:
        first = app.run({"goal": "g"}, run_id="cool")
        assert first.status == "halted"
        before = app.board.count(run_id="cool") - app.board.count(run_id="cool", status="refused")
        assert 0 < before <= 10
        waiting = app.resume("cool")
        assert waiting.status == "halted"
        assert "cooling down" in waiting.errors[0].message
        time.sleep(1.2)  # the cooldown and the rate window both pass
        again = app.resume("cool")
    assert again.status == "halted"  # still a runaway, stopped again by the rate
    assert again.tasks_created > before  # but it went on and did more work first

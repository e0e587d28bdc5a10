"""The CLI contract, end to end in subprocesses on temporary directories."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHAIN, MINI, SUPPORT_DESK, TICKET, Cli, run_cli

CliRunner = Callable[..., Cli]


def test_run_json_contract_and_live_progress(cli: CliRunner) -> None:
    done = cli("run", SUPPORT_DESK, "--input", f"@{TICKET}", "--db", "w.db", "--json")
    assert done.code == 0, done.stderr
    result = done.json
    assert set(result) >= {
        "run_id",
        "status",
        "output",
        "usage",
        "tasks_created",
        "guards_tripped",
        "errors",
    }
    assert result["status"] == "completed"
    assert set(result["usage"]) == {"input_tokens", "output_tokens", "llm_calls", "cost_usd"}
    assert result["usage"]["cost_usd"] == 0.0
    assert result["output"]["ticket_id"].startswith("T-")
    for agent in ("intake", "triage", "billing", "refund_policy", "qa", "writer"):
        assert f"✓ {agent} →" in done.stderr
    assert "Traceback" not in done.stderr


def test_human_output_shows_result_path_and_usage(cli: CliRunner) -> None:
    done = cli("run", SUPPORT_DESK, "--input", f"@{TICKET}")
    assert done.code == 0, done.stderr
    assert "completed" in done.stdout
    assert "intake → triage → billing → refund_policy → qa → writer" in done.stdout
    assert "model calls" in done.stdout


def test_default_workspace_is_dot_corral(cli: CliRunner, tmp_path: Path) -> None:
    assert cli("run", SUPPORT_DESK, "--input", f"@{TICKET}").code == 0
    assert (tmp_path / ".corral" / "corral.db").is_file()
    listed = cli("runs", "--json")
    assert listed.code == 0
    assert [r["status"] for r in listed.json] == ["completed"]


def test_input_from_stdin(cli: CliRunner) -> None:
    done = cli("run", SUPPORT_DESK, "--input", "-", "--json", stdin=TICKET.read_text())
    assert done.code == 0, done.stderr
    assert done.json["status"] == "completed"


def test_user_mistakes_exit_2_with_a_clear_message(
    cli: CliRunner, write: Callable[..., Path]
) -> None:
    bad = write(
        "bad.yaml", SUPPORT_DESK.read_text().replace("reports_to: qa", "reports_to: nobody")
    )
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "nobody" in t)
    cases = [
        (("validate", bad), f"{bad}:{line}"),
        (("run", bad, "--input", "{}"), "unknown agent 'nobody'"),
        (("run", SUPPORT_DESK, "--input", "{nope"), "--input is not valid JSON"),
        (("run", SUPPORT_DESK, "--input", '{"customer": "x"}'), "subject: Field required"),
        (("run", SUPPORT_DESK, "--input", "[1]"), "must be a JSON object"),
        (("run", SUPPORT_DESK, "--input", "@missing.json"), "cannot read input file"),
        (("run", SUPPORT_DESK), "no input given"),
        (
            ("run", SUPPORT_DESK, "--input", f"@{TICKET}", "--db", "/proc/none/w.db"),
            "cannot create the workspace database",
        ),
        (("run", SUPPORT_DESK, "--input", f"@{TICKET}", "--run-id", "a b"), "is not allowed"),
        (("resume", "nothing-here"), "no run 'nothing-here'"),
        (("graph", SUPPORT_DESK, "--format", "gif"), "is not known; use one of mermaid"),
        (("graph", SUPPORT_DESK, "--format", "png"), "is binary; give -o PATH"),
        (("graph", SUPPORT_DESK, "--direction", "XY"), "direction 'XY' is not known; use TB"),
        (("graph", SUPPORT_DESK, "--scale", "0"), "scale 0 is out of range"),
        (("graph", SUPPORT_DESK, "--scale", "9"), "scale 9 is out of range"),
        (("graph", SUPPORT_DESK, "--scale", "big"), "Invalid value for '--scale'"),
        (("run", "absent.yaml", "--input", "{}"), "cannot read the file"),
        (("frobnicate",), "No such command"),
    ]
    for args, words in cases:
        done = cli(*args)
        assert done.code == 2, (args, done.stdout, done.stderr)
        assert words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_failed_run_exits_1_and_resume_is_deterministic(
    cli: CliRunner, write: Callable[..., Path]
) -> None:
    write("script.yaml", "agents:\n  solver:\n    - raw: a\n    - raw: b\n    - raw: c\n")
    team = write(
        "mini.yaml",
        MINI.format(model="flaky").replace(
            "schemas:", "models:\n  flaky: {use: scripted, script: script.yaml}\nschemas:", 1
        ),
    )
    failed = cli("run", team, "--input", '{"text": "q"}', "--run-id", "r1", "--json")
    assert failed.code == 1
    assert failed.json["errors"][0]["type"] == "HandoffError"
    assert "resume with: corral resume r1" in failed.stderr
    resumed = cli("resume", "r1", "--json")  # a new process: the script starts over
    assert resumed.code == 1
    assert resumed.json["errors"] == failed.json["errors"]
    listed = cli("runs")
    assert "r1" in listed.stdout
    assert "failed" in listed.stdout


def test_step_limit_exits_3(cli: CliRunner, write: Callable[..., Path]) -> None:
    team = write(
        "loop.yaml",
        """\
        version: 1
        name: loop
        schemas:
          Note: {fields: {again: bool}}
        agents: [{id: ping}]
        flow:
          entry: ping
          input: Note
          output: Note
          edges:
            - {from: ping, to: ping, schema: Note, when: {field: again, equals: true}}
            - {from: ping, to: END, schema: Note}
        guards: {max_steps: 4}
        """,
    )
    done = cli("run", team, "--input", '{"again": true}', "--json")
    assert done.code == 3
    assert [(g["guard"], g["limit"]) for g in done.json["guards_tripped"]] == [("max_steps", 4)]


def test_graph_and_schema_commands(cli: CliRunner, tmp_path: Path) -> None:
    drawn = cli("graph", SUPPORT_DESK, "--format", "mermaid")
    assert drawn.code == 0
    assert 'triage -->|"Triage [category = billing]<br/>+ reports to"| billing' in drawn.stdout
    assert 'writer -->|"Reply"| __end__' in drawn.stdout
    assert "subgraph Legend" in drawn.stdout
    plain = cli("graph", SUPPORT_DESK, "--format", "dot", "--direction", "LR", "--no-legend")
    assert plain.code == 0
    assert "rankdir=LR;" in plain.stdout
    assert "cluster_legend" not in plain.stdout
    schema = cli("schema", "-o", "schema.json")
    assert schema.code == 0
    assert json.loads((tmp_path / "schema.json").read_text())["title"] == "Corral team"


def _chain_at_c(tmp_path: Path, run_id: str) -> tuple[subprocess.Popen[str], Path]:
    """``corral run`` of the four-step chain (0.4 s a step) in its own session, once its
    third step started; and the chain's log."""
    log = tmp_path / "log.txt"
    payload = json.dumps({"log": str(log), "pause": 0.4, "count": 0})
    child = subprocess.Popen(
        [
            *(sys.executable, "-m", "corral", "run", CHAIN, "--input", payload),
            *("--db", "w.db", "--run-id", run_id),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while "start c" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the run never reached node c"
        assert child.poll() is None, "the run ended before it could be stopped"
        time.sleep(0.02)
    return child, log


def test_sigkill_mid_run_then_resume_runs_no_completed_node_again(tmp_path: Path) -> None:
    child, log = _chain_at_c(tmp_path, "k1")
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    assert child.returncode == -signal.SIGKILL
    assert "done c" not in log.read_text()

    listed = subprocess.run(
        [sys.executable, "-m", "corral", "runs", "--db", "w.db", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    (row,) = json.loads(listed.stdout)
    assert row["status"] == "running"
    assert row["crashed"] is True

    resumed = subprocess.run(
        [sys.executable, "-m", "corral", "resume", "k1", "--db", "w.db", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout.splitlines()[-1])
    assert result["status"] == "completed"
    assert result["output"]["count"] == 4
    assert result["path"] == ["a", "b", "c", "d"]
    lines = log.read_text().splitlines()
    assert lines.count("done a") == lines.count("start a") == 1
    assert lines.count("done b") == lines.count("start b") == 1
    assert lines.count("start c") == 2  # interrupted once, then run to its end
    assert lines.count("done c") == lines.count("done d") == 1


def test_ctrl_c_mid_run_says_how_to_go_on_and_the_run_resumes(tmp_path: Path) -> None:
    child, log = _chain_at_c(tmp_path, "i1")
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    assert (child.returncode, "Traceback" in stderr) == (130, False), stderr
    said = "interrupted: run i1 is cancelled, its completed steps kept; go on with: "
    assert said + "corral resume i1 --db w.db" in " ".join(stderr.split())
    with sqlite3.connect(tmp_path / "w.db") as conn:
        status, errors = conn.execute("SELECT status, errors FROM runs").fetchone()
    assert status == "cancelled"
    assert "interrupted (Ctrl-C)" in errors
    resumed = subprocess.run(
        [sys.executable, "-m", "corral", "resume", "i1", "--db", "w.db", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.splitlines()[-1])["output"]["count"] == 4
    lines = log.read_text().splitlines()
    assert lines.count("start a") == lines.count("start b") == 1  # not run again


def test_a_ctrl_c_lost_on_its_way_stops_the_run_at_its_next_step(tmp_path: Path) -> None:
    # LangGraph ignores any exception in a future's done-callback: a Ctrl-C that lands
    # there is lost, and the run went on to the end (a fresh clone saw it, exit 0).
    import typer

    from corral import load_team
    from corral.cli._common import interruptible

    payload = {"log": str(tmp_path / "log.txt"), "pause": 0, "count": 0}

    def lost(app: Any) -> None:
        with interruptible("lost", app.db_path) as live:
            live.interrupted = True  # the handler ran; its KeyboardInterrupt went nowhere
            app.run(payload, run_id="lost", on_step=live.step)

    with load_team(CHAIN).compile(db=tmp_path / "w.db") as app:
        with pytest.raises(typer.Exit) as exited:
            lost(app)
        record = app.runs.get("lost")
    assert exited.value.exit_code == 130
    assert record is not None
    assert (record.status, record.path) == ("cancelled", ["a"])
    assert "interrupted (Ctrl-C)" in record.errors[0]["message"]


def test_runs_prune_and_delete(cli: CliRunner, tmp_path: Path) -> None:
    import sqlite3

    for run_id in ("a", "b"):
        assert cli("run", SUPPORT_DESK, "--input", f"@{TICKET}", "--run-id", run_id).code == 0

    def count(sql: str) -> int:
        with sqlite3.connect(tmp_path / ".corral" / "corral.db") as conn:
            return int(conn.execute(sql).fetchone()[0])

    before = count("SELECT count(*) FROM cp_checkpoints WHERE thread_id = 'a'")
    assert before >= 7
    pruned = cli("runs", "prune", "--keep", "2")
    assert pruned.code == 0, pruned.stderr
    assert f"pruned {2 * (before - 2)} checkpoints from 2 completed runs" in pruned.stdout
    assert count("SELECT count(*) FROM cp_checkpoints WHERE thread_id = 'a'") == 2
    resumed = cli("resume", "a", "--json")  # a pruned run still reads back whole
    assert resumed.code == 0
    assert resumed.json["status"] == "completed"
    assert resumed.json["output"]["ticket_id"].startswith("T-")

    assert cli("runs", "delete", "a").code == 0
    assert count("SELECT count(*) FROM cp_checkpoints WHERE thread_id = 'a'") == 0
    assert count("SELECT count(*) FROM cp_blobs WHERE thread_id = 'a'") == 0
    assert [r["run_id"] for r in cli("runs", "--json").json] == ["b"]
    missing = cli("runs", "delete", "a")
    assert missing.code == 2
    assert "no run 'a'" in missing.stderr
    with sqlite3.connect(tmp_path / ".corral" / "corral.db") as conn:  # driven elsewhere
        conn.execute(
            "UPDATE runs SET status = 'running', owner = 'another-host:42:t', expires_at = ? "
            "WHERE run_id = 'b'",
            (time.time() + 60,),
        )
    live = cli("runs", "delete", "b")
    assert (live.code, "Traceback" in live.stderr) == (2, False), live.stderr
    assert "run 'b' is still running (held by another-host:42:t)" in live.stderr
    assert [r["run_id"] for r in cli("runs", "--json").json] == ["b"]


def test_runs_prune_older_than_deletes_old_ended_runs(cli: CliRunner, tmp_path: Path) -> None:
    import sqlite3

    for run_id in ("old", "new"):
        assert cli("run", SUPPORT_DESK, "--input", f"@{TICKET}", "--run-id", run_id).code == 0
    with sqlite3.connect(tmp_path / ".corral" / "corral.db") as conn:
        conn.execute(
            "UPDATE runs SET started_at = '2020-01-01T00:00:00.000+00:00', "
            "updated_at = '2020-01-01T00:00:00.000+00:00' WHERE run_id = 'old'"
        )
    pruned = cli("runs", "prune", "--older-than", "30d")
    assert pruned.code == 0, pruned.stderr
    assert "deleted 1 run older than 30d" in pruned.stdout
    assert [r["run_id"] for r in cli("runs", "--json").json] == ["new"]
    wrong = cli("runs", "prune", "--older-than", "a month")
    assert wrong.code == 2
    assert "is not an age" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_budget_command_reports_usage_against_limits(cli: CliRunner) -> None:
    ran = cli("run", SUPPORT_DESK, "--input", f"@{TICKET}", "--json")
    assert ran.code == 0
    usage = ran.json["usage"]
    report = cli("budget", "--json")
    assert report.code == 0, report.stderr
    data = report.json
    team = data["team"]
    assert team["tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert team["calls"] == usage["llm_calls"] == 4
    assert team["cost_usd"] == usage["cost_usd"] == 0.0
    billing = next(a for a in data["agents"] if a["agent"] == "billing")
    assert billing["token_limit"] == 200000  # from the manifest's budget
    assert 0 < billing["token_pct"] < 1
    table = cli("budget")
    assert "billing" in table.stdout
    assert "team" in table.stdout
    bad = cli("budget", "--day", "yesterday")
    assert bad.code == 2
    assert "use YYYY-MM-DD" in bad.stderr


def test_commands_that_read_never_create_a_workspace(
    cli: Callable[..., Cli], tmp_path: Path
) -> None:
    for args in (
        ("resume", "some-run", "--db", "typo/path.db"),
        ("runs", "--db", "typo/path.db"),
        ("runs", "show", "some-run", "--db", "typo/path.db"),
        ("budget", "--db", "typo/path.db"),
        ("runs", "prune", "--keep", "1", "--db", "typo/path.db"),
        ("runs", "delete", "some-run", "--db", "typo/path.db"),
    ):
        done = cli(*args)
        assert done.code == 2, (args, done.stderr)
        assert "there is no workspace at typo/path.db" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "typo").exists()
    (tmp_path / "empty.db").touch()  # an empty file is no workspace either, and stays empty
    for args in (("runs", "--db", "empty.db"), ("budget", "--db", "empty.db")):
        done = cli(*args)
        assert done.code == 2, (args, done.stderr)
        assert "there is no workspace at empty.db (an empty file)" in done.stderr
    assert (tmp_path / "empty.db").stat().st_size == 0
    (tmp_path / "folder").mkdir()
    for args in (("runs", "--db", "folder"), ("doctor", "folder")):
        done = cli(*args)
        assert done.code == 2, (args, done.stderr)
        assert "there is no workspace at folder (a folder; give the workspace file in it)" in (
            " ".join(done.stderr.split())
        )


def test_hostile_inputs_are_clear_errors_never_tracebacks(
    cli: Callable[..., Cli], write: Callable[..., Path]
) -> None:
    write("deep.json", "[" * 5000)
    (write("utf16.json", "x")).write_bytes("{}".encode("utf-16"))
    big = '{"customer": "a", "subject": "b", "body": "c", "plan": ' + "9" * 5000 + "}"
    write("big.json", big)
    for name, words in (
        ("deep.json", "nested too deeply"),
        ("utf16.json", "is not UTF-8 text"),
        ("big.json", "Exceeds the limit"),
    ):
        done = cli("run", SUPPORT_DESK, "--input", f"@{name}", "--db", "w.db")
        assert done.code == 2, (name, done.stderr)
        assert words in done.stderr
        assert "Traceback" not in done.stderr


def test_an_input_file_with_a_byte_order_mark_is_read(
    cli: Callable[..., Cli], write: Callable[..., Path]
) -> None:
    (write("bom.json", "x")).write_bytes(b"\xef\xbb\xbf" + TICKET.read_bytes())
    done = cli("run", SUPPORT_DESK, "--input", "@bom.json", "--db", "w.db", "--json")
    assert done.code == 0, done.stderr


def test_nan_and_infinity_are_not_json_input(cli: Callable[..., Cli]) -> None:
    for constant in ("NaN", "Infinity", "-Infinity"):
        done = cli("run", SUPPORT_DESK, "--input", f'{{"customer": {constant}}}', "--db", "w.db")
        assert done.code == 2, done.stderr
        assert f"{constant} is not a JSON number" in done.stderr


def test_manifest_mistakes_that_used_to_crash_name_their_line(
    cli: Callable[..., Cli], write: Callable[..., Path]
) -> None:
    deep_type = "list[" * 30 + "str" + "]" * 30
    mini = MINI.format(model="scripted")
    cases = {
        "deep": (mini + "extra: " + "[" * 5000 + "\n", "nested more"),
        "type": (
            mini.replace("text: {type: str, min_length: 1}", f"text: {{type: '{deep_type}'}}"),
            "nests more than 16",
        ),
        "ge_on_str": (
            mini.replace("min_length: 1", "ge: 3"),
            "ge does not apply to a str field",
        ),
        "pattern_on_int": (
            mini.replace("ge: 0, le: 10", "pattern: '^a'"),
            "pattern does not apply to a int field",
        ),
    }
    lines = mini.splitlines()
    cases["nul"] = ("\n".join([*lines[:4], lines[4] + "\x00", *lines[5:]]) + "\n", "'\\x00'")
    cases["two_documents"] = (mini + "---\nname: again\n", "another document")
    where = {"nul": 5, "two_documents": len(lines) + 1}
    for name, (text, words) in cases.items():
        done = cli("validate", write(f"{name}.yaml", text))
        if name in where:
            assert f"{name}.yaml:{where[name]}:" in done.stderr, done.stderr
        assert done.code == 2, (name, done.stdout, done.stderr)
        assert words in done.stderr, (name, done.stderr)
        assert f"{name}.yaml:" in done.stderr
        assert "Traceback" not in done.stderr


def test_a_team_file_that_is_not_a_regular_file_is_refused_without_reading_it(
    tmp_path: Path,
) -> None:
    # /dev/zero never ends and a FIFO with no writer never starts: neither is read.
    fifo = tmp_path / "team.fifo"
    os.mkfifo(fifo)
    for path, kind in ((Path("/dev/zero"), "a character device"), (fifo, "a FIFO")):
        done = run_cli("validate", path, cwd=tmp_path, timeout=30)
        assert done.code == 2, (path, done.stderr)
        assert f"{path}:1: not a regular file ({kind})" in done.stderr
        assert "Traceback" not in done.stderr

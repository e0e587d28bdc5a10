"""Numbers, paths and text out of bounds on the command line: each is refused by name,
exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import InputError
from tests.conftest import Cli, run_cli
from tests.test_cli_edges import ECHO, STEPS


def _team(tmp_path: Path) -> Path:
    (tmp_path / "steps.py").write_text(STEPS)
    path = tmp_path / "team.yaml"
    path.write_text(ECHO)
    return path


def _refused(done: Cli, said: str) -> None:
    assert done.code == 2, (done.stdout, done.stderr)
    assert said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def _with_a_run(tmp_path: Path) -> None:
    ran = run_cli("run", _team(tmp_path), "--input", '{"text": "hi"}', "--db", "w.db", cwd=tmp_path)
    assert ran.code == 0, ran.stderr


def test_a_huge_limit_or_age_is_refused_by_name(tmp_path: Path) -> None:
    _with_a_run(tmp_path)
    listed = run_cli("runs", "--db", "w.db", "--limit", "99999999999999999999", cwd=tmp_path)
    _refused(listed, "--limit")
    pruned = run_cli("runs", "prune", "--older-than", "99999999999d", "--db", "w.db", cwd=tmp_path)
    _refused(pruned, "--older-than '99999999999d' is longer than 1000 years")
    assert run_cli("runs", "--db", "w.db", "--limit", "1000000", cwd=tmp_path).code == 0


def test_a_temporal_address_with_a_port_out_of_range_is_refused_by_name(tmp_path: Path) -> None:
    team = _team(tmp_path)
    far = "127.0.0.1:99999"
    for args in (
        ["run", team, "--input", '{"text": "hi"}', "--temporal", far],
        ["worker", team, "--temporal", far, "--db", "w.db"],
        ["serve", team, "--temporal", far, "--db", "w.db"],
    ):
        _refused(run_cli(*args, cwd=tmp_path), f"cannot reach a Temporal server at {far}")


def test_serve_refuses_a_body_limit_below_one_byte(tmp_path: Path) -> None:
    from corral.server import create_app

    team = _team(tmp_path)
    for args in (["--max-body", "-5"], ["--max-body", "0"], ["--keep-runs", "0"]):
        done = run_cli(
            "serve", team, "--db", "w.db", "--port", "18125", *args, cwd=tmp_path, timeout=30
        )
        _refused(done, f"Invalid value for '{args[0]}'")
    with pytest.raises(InputError, match="max_body must be at least 1 byte"):
        create_app([team], db=tmp_path / "w.db", max_body=0)


def test_input_with_a_lone_surrogate_is_refused_before_a_run_exists(tmp_path: Path) -> None:
    _with_a_run(tmp_path)
    team = tmp_path / "team.yaml"
    (tmp_path / "odd.json").write_text('{"text": "a \\udc00 b"}')
    for given in ('{"text": "\\ud800"}', "@odd.json"):
        done = run_cli("run", team, "--input", given, "--db", "w.db", cwd=tmp_path)
        _refused(done, "has text that is not valid Unicode")
    listed = run_cli("runs", "--db", "w.db", "--json", cwd=tmp_path)
    assert len(listed.json) == 1  # only the run made before

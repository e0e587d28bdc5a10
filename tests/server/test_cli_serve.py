"""``corral serve`` from the command line: keys from ``$CORRAL_API_KEYS``, and a bad team
file refused with file:line (exit 2, no traceback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.server.conftest import free_port
from tests.server.test_restart import serve

KEY = "a-key-from-the-environment"


def test_keys_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    server = serve(tmp_path, port, tmp_path / "log", env={"CORRAL_API_KEYS": f"{KEY} chain"})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            assert http.get("/ok").status_code == 200
            assert http.post("/assistants/search", json={}).status_code == 401
            found = http.post(
                "/assistants/search", json={}, headers={"Authorization": f"Bearer {KEY}"}
            )
            assert [a["graph_id"] for a in found.json()] == ["chain"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_a_bad_team_file_is_refused_with_its_line(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text("version: 1\nname: bad\nagents: []\nflow: {entry: nobody}\n")
    corral = Path(sys.executable).with_name("corral")
    done = subprocess.run(
        [str(corral), "serve", str(team), "--db", str(tmp_path / "w.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"{team}:" in done.stderr
    assert "Traceback" not in done.stderr


def test_keep_runs_is_checked(tmp_path: Path) -> None:
    corral = Path(sys.executable).with_name("corral")
    team = Path(__file__).parents[1] / "fixtures" / "chain" / "team.yaml"
    done = subprocess.run(
        [str(corral), "serve", str(team), "--db", str(tmp_path / "w.db"), "--keep-runs", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Invalid value for '--keep-runs'" in done.stderr  # named as the option
    assert "Traceback" not in done.stderr

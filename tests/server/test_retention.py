"""Memory is bounded: only the last ``keep_runs`` ended runs keep their event logs; an
older run is forgotten (404), while its thread and state stay in the workspace."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_sync_client

from corral.errors import InputError
from corral.server import create_app
from tests.server.conftest import REVIEWED, running


def test_only_the_last_ended_runs_are_kept(tmp_path: Path) -> None:
    (tmp_path / "reviewed.yaml").write_text(REVIEWED)
    app = create_app([tmp_path / "reviewed.yaml"], db=tmp_path / "w.db", keep_runs=2)
    with running(app, tmp_path) as on:
        client = get_sync_client(url=on.url)
        runs = []
        for i in range(3):
            run = client.runs.create(None, "reviewed", input={"text": f"q{i}"})
            client.runs.join(run["thread_id"], run["run_id"])  # ended: paused for review
            runs.append(run)
        first, *kept = runs
        with pytest.raises(httpx.HTTPStatusError) as gone:
            client.runs.get(first["thread_id"], first["run_id"])
        assert gone.value.response.status_code == 404
        for run in kept:
            assert client.runs.get(run["thread_id"], run["run_id"])["run_id"] == run["run_id"]
            assert "__interrupt__" in client.runs.join(run["thread_id"], run["run_id"])
        thread = client.threads.get(first["thread_id"])  # the thread and its state stay
        assert thread["status"] == "interrupted"
        assert thread["values"]["text"] == "q0"
        assert [r["run_id"] for r in client.runs.list(kept[0]["thread_id"])] == [kept[0]["run_id"]]


def test_keep_runs_must_keep_one(tmp_path: Path) -> None:
    (tmp_path / "reviewed.yaml").write_text(REVIEWED)
    with pytest.raises(InputError, match="keep_runs"):
        create_app([tmp_path / "reviewed.yaml"], db=tmp_path / "w.db", keep_runs=0)

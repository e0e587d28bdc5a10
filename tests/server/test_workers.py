"""``create_app(workers=2)``: the graphs run in two worker processes; the HTTP process only
serves I/O. The SDK, review and reconnect tests run again here against it (imported
below, with this module's ``served``), then what is the pool's own: runs land on both
workers, metrics add up across them, and a worker killed with -9 mid-run is replaced and
its run completes once."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from langgraph_sdk import get_sync_client

from corral import load_team
from corral.errors import InputError
from corral.manifest import TeamSpec
from corral.server import create_app
from tests.server.conftest import REVIEWED, Served, running, teams
from tests.server.test_reconnect import (  # noqa: F401  (run again with two workers)
    test_reconnect_with_last_event_id_has_no_duplicates,
    test_the_sdk_joins_a_stream_from_an_event_id,
)
from tests.server.test_review import (  # noqa: F401
    test_a_queued_decision_is_checked_when_it_starts,
    test_a_resume_that_is_not_a_decision_is_refused,
    test_an_edit_is_checked_against_the_schema,
    test_approve,
    test_reject_with_a_reason,
    test_the_async_client_decides_too,
)
from tests.server.test_sdk import (  # noqa: F401
    test_a_streamed_run_starts_with_metadata_and_ends_with_end,
    test_cancel_a_run_then_go_on_from_its_checkpoint,
    test_cancel_with_rollback,
    test_events_stream_mode,
    test_multitask_interrupt,
    test_multitask_reject_and_enqueue,
    test_multitask_rollback,
    test_the_async_client,
    test_the_other_stream_modes,
    test_wait_join_and_stateless_runs,
    work,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("workers")
    with running(create_app(teams(folder), db=folder / "w.db", workers=2), folder) as found:
        yield found


def _wait_until(check: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _worker(client: object, thread: str, run: str) -> int:
    """The pid of the worker running a run, once it began."""
    found: list[int] = []

    def began() -> bool:
        meta = client.runs.get(thread, run)["metadata"]  # type: ignore[attr-defined]
        found[:] = [meta["corral_worker_pid"]] if "corral_worker_pid" in meta else []
        return bool(found)

    _wait_until(began)
    return found[0]


def test_runs_land_on_both_worker_processes(served: Served) -> None:
    client = get_sync_client(url=served.url)
    runs = []
    for i in range(4):  # each goes to the least-loaded worker: two each
        thread = client.threads.create()["thread_id"]
        run = client.runs.create(thread, "chain", input=work(served, 0.1, f"spread{i}"))
        runs.append((thread, run["run_id"]))
    for thread, run in runs:
        assert client.runs.join(thread, run)["count"] == 4
    pids = [client.runs.get(t, r)["metadata"]["corral_worker_pid"] for t, r in runs]
    assert len(set(pids)) == 2, pids
    assert os.getpid() not in pids  # not this (the HTTP) process
    assert sorted(pids.count(p) for p in set(pids)) == [2, 2]


def test_metrics_add_up_across_the_workers(served: Served) -> None:
    def calls() -> float:
        text = httpx.get(f"{served.url}/metrics").text
        found = re.findall(r'corral_llm_calls_total\{agent="solver",model="[^"]*"\} (\S+)', text)
        return sum(map(float, found))

    client = get_sync_client(url=served.url)
    before = calls()
    runs = []
    for _ in range(2):  # one on each worker: the model takes 0.3 s a call
        thread = client.threads.create()["thread_id"]
        runs.append((thread, client.runs.create(thread, "slow_review", input={"text": "m"})))
    pids = {_worker(client, t, r["run_id"]) for t, r in runs}
    for thread, run in runs:
        assert "__interrupt__" in client.runs.join(thread, run["run_id"])  # one call each
    assert len(pids) == 2
    assert calls() == before + 2
    text = httpx.get(f"{served.url}/metrics").text
    assert text.count("# TYPE corral_llm_calls_total counter") == 1  # one family, merged


@pytest.mark.parametrize("step", ["a", "c"])  # in its first step, or later
def test_a_worker_killed_mid_run_is_replaced_and_the_run_completes_once(
    served: Served, step: str
) -> None:
    client = get_sync_client(url=served.url)
    victim_thread = client.threads.create()["thread_id"]
    other_thread = client.threads.create()["thread_id"]
    log = served.folder / f"killed{step}.txt"
    other_log = served.folder / f"survivor{step}.txt"
    victim = client.runs.create(victim_thread, "chain", input=work(served, 0.5, f"killed{step}"))
    other = client.runs.create(other_thread, "chain", input=work(served, 0.4, f"survivor{step}"))
    pid = _worker(client, victim_thread, victim["run_id"])
    assert _worker(client, other_thread, other["run_id"]) != pid  # on the other worker
    # "start c": b's checkpoint is written, so the kill cannot land between b's last line
    # and its checkpoint (b would rightly run again)
    _wait_until(lambda: log.exists() and f"start {step}" in log.read_text())
    os.kill(pid, signal.SIGKILL)
    assert client.runs.join(victim_thread, victim["run_id"])["count"] == 4
    assert client.runs.join(other_thread, other["run_id"])["count"] == 4
    assert client.runs.get(victim_thread, victim["run_id"])["status"] == "success"
    assert client.threads.get(victim_thread)["status"] == "idle"
    lines = log.read_text().splitlines()
    assert lines.count(f"start {step}") == 2  # cut short by the kill, run again
    for name in "abcd":
        assert lines.count(f"done {name}") == 1, lines  # each step's effect once
    assert other_log.read_text().splitlines().count("done d") == 1
    moved = client.runs.get(victim_thread, victim["run_id"])["metadata"]["corral_worker_pid"]
    assert moved not in (pid, os.getpid())  # finished on the worker that replaced it
    after = client.runs.wait(None, "chain", input=work(served, 0.0, "after"))
    assert after["count"] == 4  # the pool serves on, two workers again


def test_workers_load_the_teams_from_their_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="workers must be 0 or more"):
        create_app([], workers=-1)
    built = TeamSpec.model_validate(yaml.safe_load(REVIEWED))  # in Python: no file
    with pytest.raises(InputError, match="workers=0"):
        create_app([built], db=tmp_path / "w.db", workers=1)
    spec = load_team(teams(tmp_path)[0])  # a spec from a file: the worker loads the file
    with running(create_app([spec], db=tmp_path / "w.db", workers=1), tmp_path) as served:
        client = get_sync_client(url=served.url)
        thread = client.threads.create()["thread_id"]
        paused = client.runs.wait(thread, "reviewed", input={"text": "from a spec"})
        assert paused["__interrupt__"][0]["value"]["payload"]["text"]
        run = client.runs.list(thread)[0]
        assert run["metadata"]["corral_worker_pid"] != os.getpid()


def test_a_large_input_goes_to_a_worker_whole_and_the_worker_goes_on(served: Served) -> None:
    client = get_sync_client(url=served.url, timeout=60)
    for size in (900_000, 10, 900_000, 10):  # the body limit is 1 MiB; each worker twice
        thread = client.threads.create()["thread_id"]
        done = client.runs.wait(thread, "reviewed", input={"text": "x" * size})
        assert isinstance(done, dict)
        assert client.threads.get(thread)["status"] == "interrupted"  # at its review
        review = client.threads.get_state(thread)["tasks"][0]["interrupts"][0]["value"]
        assert len(review["payload"]["text"]) == size

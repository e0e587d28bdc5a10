"""Review deadlines: a review nobody decides in time is decided by its policy when the
run is next resumed, and the deadline is recorded as the one who decided."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from corral import InputError, load_team
from corral.graphs import App
from tests.conftest import run_cli
from tests.review.test_review_cli import team

Write = Callable[..., Path]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def app(write: Write, tmp_path: Path, clock: Clock, on_timeout: str) -> App:
    edge = f", review: {{timeout_seconds: 60, on_timeout: {on_timeout}}}"
    return load_team(team(write, edge=edge)).compile(db=tmp_path / "w.db", clock=clock)


@pytest.mark.parametrize(
    ("on_timeout", "status", "message"),
    [
        ("reject", "failed", "rejected by the review deadline: no decision by the review deadline"),
        ("approve", "completed", None),
    ],
)
def test_an_expired_review_is_decided_by_its_policy_and_recorded(
    write: Write, tmp_path: Path, on_timeout: str, status: str, message: str | None
) -> None:
    clock = Clock()
    with app(write, tmp_path, clock, on_timeout) as compiled:
        paused = compiled.run({"text": "hello"}, run_id="d1")
        assert paused.status == "paused"
        [waiting] = compiled.pending()
        assert waiting["deadline"] == "1970-01-12T13:47:40.000+00:00"  # paused at 1e6, +60s
        assert waiting["on_timeout"] == on_timeout
        clock.now += 59
        with pytest.raises(InputError, match="exactly one of approve, reject or edit"):
            compiled.resume("d1")  # time left: a person must still decide
        clock.now += 2
        with pytest.raises(InputError, match="passed its deadline"):
            compiled.resume("d1", approve=True)  # too late for a person: the policy decides
        done = compiled.resume("d1")
        assert done.status == status
        assert (str(done.errors[0]) if done.errors else None) == (
            f"{message} 1970-01-12T13:47:40.000+00:00" if message else None
        )
        [event] = compiled.events.list("d1", "review_expired")
        assert (event["by"], event["decided"], event["agent"]) == (
            "deadline",
            on_timeout,
            "drafter",
        )
        assert event["decided_at"] == "1970-01-12T13:47:41.000+00:00"
        [audit] = [r for r in compiled.audit.rows("d1") if r["scope"] == "deadline"]
        assert (audit["agent"], audit["target"], audit["verdict"]) == (
            "drafter",
            "sender",
            on_timeout,
        )
        assert compiled.pending() == []


def test_an_escalated_review_waits_first_in_line_for_a_person(write: Write, tmp_path: Path) -> None:
    clock = Clock()
    with app(write, tmp_path, clock, "escalate") as compiled:
        compiled.run({"text": "first"}, run_id="late")
        clock.now += 30
        compiled.run({"text": "second"}, run_id="fresh")
        clock.now += 31  # "late" is past its deadline; "fresh" has 29 seconds left
        escalated = compiled.resume("late")
        assert escalated.status == "paused"
        assert escalated.errors[0].review["escalated"] is True  # type: ignore[attr-defined]
        assert compiled.resume("late").status == "paused"  # asked again: still a person's
        assert len(compiled.events.list("late", "review_expired")) == 1  # recorded once
        assert [(r["run_id"], r["escalated"]) for r in compiled.pending()] == [
            ("late", True),
            ("fresh", False),
        ]
        settled = {
            r: (what, res and res.status)
            for r, what, res in compiled.settle_reviews(approve_all=True)
        }
        assert settled == {  # approving all leaves the escalation to a person
            "late": ("left waiting: escalated by its deadline, for a person", None),
            "fresh": ("approve", "completed"),
        }
        approved = compiled.resume("late", approve=True)  # a person decides an escalation
        assert approved.status == "completed"


def test_runs_pending_limit_keeps_the_first_runs_of_the_list_escalated_first(
    write: Write, tmp_path: Path
) -> None:
    clock = Clock()
    with app(write, tmp_path, clock, "escalate") as compiled:
        compiled.run({"text": "first"}, run_id="late")
        for run_id in ("fresh1", "fresh2"):
            clock.now += 20
            compiled.run({"text": run_id}, run_id=run_id)
        clock.now += 21  # only "late" is past its deadline
        assert compiled.resume("late").status == "paused"  # escalated, and the oldest
    for limit, shown in ((1, ["late"]), (2, ["late", "fresh2"]), (3, ["late", "fresh2", "fresh1"])):
        listed = run_cli(
            "runs", "--pending", "--limit", str(limit), "--json", "--db", "w.db", cwd=tmp_path
        )
        assert listed.code == 0, listed.stderr
        assert [r["run_id"] for r in listed.json] == shown  # the limit cuts the list as shown


def test_settling_reviews_decides_expired_ones_and_approves_the_rest_on_request(
    write: Write, tmp_path: Path
) -> None:
    clock = Clock()
    with app(write, tmp_path, clock, "reject") as compiled:
        compiled.run({"text": "old"}, run_id="old")
        clock.now += 100
        compiled.run({"text": "new"}, run_id="new")
        settled = {run_id: (what, r and r.status) for run_id, what, r in compiled.settle_reviews()}
        assert settled == {
            "old": ("reject (deadline passed)", "failed"),
            "new": ("left waiting (deadline 1970-01-12T13:49:20.000+00:00)", None),
        }
        approved = [
            (run_id, what, r and r.status)
            for run_id, what, r in compiled.settle_reviews(approve_all=True)
        ]
        assert approved == [("new", "approve", "completed")]


def test_a_run_paused_through_the_graph_itself_is_listed_pending_with_its_review(
    write: Write, tmp_path: Path
) -> None:
    clock = Clock()
    with app(write, tmp_path, clock, "escalate") as compiled:
        compiled.graph.invoke({"text": "direct"}, compiled.config("direct"))  # as a server does
        record = compiled.runs.get("direct")
        assert record is not None
        assert record.status == "paused"
        assert [e["type"] for e in record.errors] == ["ReviewPending"]
        assert record.errors[0]["review"]["source"] == "drafter"
    listed = run_cli("runs", "--pending", "--json", "--db", "w.db", cwd=tmp_path)
    assert listed.code == 0, listed.stderr
    assert [r["run_id"] for r in listed.json] == ["direct"]


def test_a_refused_decision_keeps_the_review_s_deadline(write: Write, tmp_path: Path) -> None:
    """Before: the deadline was stamped when the review node ran, and it runs again at
    each resume, so a malformed decision 30 s in pushed the deadline 30 s later."""
    from langgraph.types import Command

    clock = Clock()
    with app(write, tmp_path, clock, "reject") as compiled:
        assert compiled.run({"text": "hello"}, run_id="d1").status == "paused"
        [first] = compiled.pending()
        clock.now += 30
        out = compiled.graph.invoke(Command(resume="junk"), compiled.config("d1"))
        assert "a decision is a mapping" in out["__interrupt__"][0].value["refused"]
        [again] = compiled.pending()
        assert "refused" in again
        assert (again["deadline"], again["asked_at"]) == (first["deadline"], first["asked_at"])
        assert again["deadline"] == "1970-01-12T13:47:40.000+00:00"
        clock.now += 31  # past the first deadline: the policy decides
        done = compiled.resume("d1")
        assert done.status == "failed"
        assert "rejected by the review deadline" in str(done.errors[0])

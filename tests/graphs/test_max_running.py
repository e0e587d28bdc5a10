"""``App(max_running=N)`` bounds the async runs driven at once in one event loop; the
others wait their turn and every run still completes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from corral import AgentSpec, FlowSpec, InputError, SchemaSpec, Team
from corral.manifest import EdgeSpec


class Work(BaseModel):
    step: int


class Gauge:
    """Counts the function steps in progress at once. Each one waits a little, or with
    ``meet``, until that many are in progress (at most ``MEET_WITHIN`` seconds): runs that
    may all go at once then meet whatever the machine's load spreads their starts by."""

    MEET_WITHIN = 10.0

    def __init__(self, meet: int | None = None) -> None:
        self.now = 0
        self.most = 0
        self.failing = False
        self.meet = meet

    def step(self) -> Any:
        async def advance(payload: Work) -> dict[str, Any]:
            if self.failing:
                raise RuntimeError("down for now")
            self.now += 1
            self.most = max(self.most, self.now)
            await asyncio.sleep(0.01)
            waited = 0.0
            while self.meet is not None and self.most < self.meet and waited < self.MEET_WITHIN:
                await asyncio.sleep(0.01)
                waited += 0.01
            self.now -= 1
            return {"step": payload.step + 1}

        return advance


def team(gauge: Gauge) -> Team:
    return Team(
        name="gated",
        schemas={"Work": SchemaSpec(model=Work)},
        agents=[AgentSpec(id="a", kind="function", function=gauge.step())],
        flow=FlowSpec(
            entry="a",
            input="Work",
            output="Work",
            edges=[EdgeSpec(from_="a", to="END", schema_name="Work")],
        ),
    )


async def arun_many(app: Any, n: int) -> list[Any]:
    return await asyncio.gather(*(app.arun({"step": 0}) for _ in range(n)))


async def astream_many(app: Any, n: int) -> list[str]:
    async def one() -> str:
        kinds = [event.kind async for event in app.astream({"step": 0})]
        return kinds[-1]

    return await asyncio.gather(*(one() for _ in range(n)))


def test_no_more_than_max_running_runs_at_once(tmp_path: Path) -> None:
    gauge = Gauge()
    with team(gauge).compile(db=tmp_path / "g.db", max_running=2) as app:
        results = asyncio.run(arun_many(app, 8))
        assert [r.status for r in results] == ["completed"] * 8
        assert [r.output for r in results] == [{"step": 1}] * 8
        assert gauge.most == 2
        gauge.most = 0
        ends = asyncio.run(astream_many(app, 6))  # a second event loop, its own bound
        assert ends == ["run_finished"] * 6
        assert gauge.most == 2


def test_resumed_runs_keep_to_the_bound(tmp_path: Path) -> None:
    gauge = Gauge()
    gauge.failing = True
    with team(gauge).compile(db=tmp_path / "g.db", max_running=2) as app:
        failed = asyncio.run(arun_many(app, 6))
        assert [r.status for r in failed] == ["failed"] * 6
        gauge.failing = False

        async def resume_all() -> list[Any]:
            return await asyncio.gather(*(app.aresume(r.run_id) for r in failed))

        resumed = asyncio.run(resume_all())
    assert [r.output for r in resumed] == [{"step": 1}] * 6
    assert gauge.most == 2


def test_without_a_bound_all_runs_go_at_once(tmp_path: Path) -> None:
    gauge = Gauge(meet=8)  # a bound below 8 would keep the eighth run from ever meeting
    with team(gauge).compile(db=tmp_path / "g.db") as app:
        assert app.max_running is None
        results = asyncio.run(arun_many(app, 8))
        assert all(r.ok for r in results)
        assert gauge.most == 8


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4", True])
def test_a_bad_bound_is_refused(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(InputError, match="max_running") as caught:
        team(Gauge()).compile(db=tmp_path / "g.db", max_running=bad)
    assert caught.value.field == "max_running"

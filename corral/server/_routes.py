"""Corral's own routes: health, Prometheus metrics, the review inbox, a run's trace and
the budget report."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from corral.server._threads import HubDep
from corral.server._wire import plain, refuse

router = APIRouter(tags=["corral"])
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@router.get("/ok")
async def ok() -> dict[str, bool]:
    """Health: the server answers (no key needed)."""
    return {"ok": True}


@router.get("/metrics", response_class=Response)
async def metrics(hub: HubDep, request: Request) -> Response:
    """Prometheus text: runs, tokens, costs and guard trips of every team served (so
    only a key for every team reads it)."""
    if hub is not request.app.state.hub:
        raise refuse(403, "the metrics cover every team: use a key for every team")
    app = next(iter(hub.by_name.values()))
    texts = [app.metrics.text(), *await hub.executor.metrics()]  # with the workers'
    body = texts[0] if len(texts) == 1 else merged(texts)
    return Response(body, media_type="text/plain; version=0.0.4")


def merged(texts: list[bytes]) -> bytes:
    """Several processes' Prometheus texts as one: counts and histograms added, a gauge
    the largest, a creation time the earliest."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text.decode()):
            families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            found = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                had = found.get(key)
                if had is None:
                    found[key] = sample.value
                elif sample.name.endswith("_created"):
                    found[key] = min(had, sample.value)
                else:
                    add = family.type != "gauge"
                    found[key] = had + sample.value if add else max(had, sample.value)
    for name, family in families.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))
    return generate_latest(registry)


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


@router.get("/corral/reviews")
async def reviews(hub: HubDep) -> list[dict[str, Any]]:
    """The review inbox: every paused run of the caller's teams with what waits (kind,
    source, target, schema, the payload, the reason, a deadline if any). Decide one with
    a run on its thread: ``command: {resume: {action: ...}}``."""
    found = []
    for name, app in hub.by_name.items():
        for review in await asyncio.to_thread(app.pending):
            found.append({"team": name, "thread_id": review["run_id"], **plain(review)})
    return found


@router.get("/corral/threads/{thread_id}/trace")
async def trace(thread_id: str, hub: HubDep) -> list[dict[str, Any]]:
    """Everything the run did, in order: inputs, outputs, decisions, model calls, guard
    verdicts, failures, subtasks."""
    info = await hub.thread(thread_id)
    if info.team is None:
        return []
    events = await asyncio.to_thread(hub.by_name[info.team].trace, thread_id)
    return [plain(e.to_dict()) for e in events]


@router.get("/corral/budget")
async def budget(hub: HubDep, request: Request, day: str | None = None) -> list[dict[str, Any]]:
    """The workspace's spending on ``day`` (default today): tokens and cost per agent and
    for the team, against their limits (it covers every team: a key for every team)."""
    if hub is not request.app.state.hub:
        raise refuse(403, "the budget report covers every team: use a key for every team")
    app = next(iter(hub.by_name.values()))
    when: str = day if day is not None else await asyncio.to_thread(app.ledger.day)
    if not _DAY.fullmatch(when):
        raise refuse(422, f"day {when[:20]!r} is not YYYY-MM-DD")
    return plain(await asyncio.to_thread(app.ledger.report, when))  # type: ignore[no-any-return]

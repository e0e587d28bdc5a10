"""CorralSaver passes LangGraph's checkpointer conformance suite for every capability."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from corral.workspace import CorralSaver


@checkpointer_test(name="CorralSaver")
async def corral_saver() -> AsyncIterator[CorralSaver]:
    with tempfile.TemporaryDirectory() as tmp:
        saver = CorralSaver(Path(tmp) / "w.db")
        yield saver
        saver.close()


def test_conformance_all_capabilities() -> None:
    report = asyncio.run(validate(corral_saver))
    report.print_report()
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert not failures, failures
    detected = {name for name, r in report.results.items() if r.detected}
    assert detected == {c.value for c in ALL_CAPABILITIES}
    assert report.conformance_level() == "FULL"
    assert sum(r.tests_passed for r in report.results.values()) > 50

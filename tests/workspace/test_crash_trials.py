"""A light run of the crash trials (make bench runs 1,000)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_trials() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "crash_trials", ROOT / "benchmarks" / "crash_trials.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_trials"] = module
    spec.loader.exec_module(module)
    return module


def test_sixty_crash_trials_lose_nothing_and_redo_nothing() -> None:
    report = load_trials().run_trials(60, seed=7)
    assert report.trials == 60
    assert set(report.by_point) == {"random", "before_writes", "between", "after_checkpoint"}
    assert report.killed >= 40  # most trials really were killed mid-run
    assert report.failures == []

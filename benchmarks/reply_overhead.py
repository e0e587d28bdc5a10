"""What keeping model replies costs per call: a ledger row alone, vs the reply lookup
plus the row with its kept answer (SQLite), interleaved ABAB, paired ratios.

    .venv/bin/python benchmarks/reply_overhead.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from langchain_core.messages import AIMessage

from corral import open_workspace
from corral.workspace import Workspace, reply_key, reply_of

CALLS, ROUNDS = 200, 12


def call(workspace: Workspace, i: int, *, keep: bool) -> None:
    """One settled model call's bookkeeping (with the reply lookup and kept answer)."""
    raw = AIMessage(
        content="x" * 200,
        tool_calls=[{"name": "post", "args": {"entry": "refund"}, "id": f"c{i}"}],
        usage_metadata={"input_tokens": 120, "output_tokens": 30, "total_tokens": 150},
        response_metadata={"model_name": "scripted"},
    )
    key = reply_key("r", "r:a@1", i)
    reply = None
    if keep:
        workspace.ledger.reply(key)
        reply = reply_of(key, "r", raw)
    workspace.ledger.record(
        run_id="r",
        task_key="r:a@1",
        agent="a",
        model="scripted",
        input_tokens=120,
        output_tokens=30,
        cached_tokens=0,
        cost=None,
        latency_ms=1.0,
        reply=reply,
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        workspace = open_workspace(os.path.join(folder, "w.db"))
        per: dict[bool, list[float]] = {False: [], True: []}
        done = 0
        for r in range(ROUNDS):
            for keep in (False, True) if r % 2 == 0 else (True, False):
                start = time.perf_counter()
                for i in range(CALLS):
                    call(workspace, done + i, keep=keep)
                done += CALLS
                per[keep].append((time.perf_counter() - start) / CALLS * 1e6)
        workspace.close()
    ratios = [b / a for a, b in zip(per[False], per[True], strict=True)]
    print(f"load average {os.getloadavg()}")
    print(
        f"per call: ledger row alone {statistics.median(per[False]):.0f} us, with the reply "
        f"lookup and kept answer {statistics.median(per[True]):.0f} us (medians)"
    )
    print(
        f"paired ratio: median {statistics.median(ratios):.2f}x, min {min(ratios):.2f}x, "
        f"max {max(ratios):.2f}x"
    )


if __name__ == "__main__":
    main()

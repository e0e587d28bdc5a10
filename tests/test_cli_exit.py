"""How a ``corral`` process leaves once Temporal's Rust bridge is loaded: with its
status, its output flushed and the exit handlers registered after it run, and without
the interpreter's teardown (which the bridge's threads can crash:
temporalio/sdk-python#300)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import atexit, sys
from pathlib import Path
from corral.cli._exit import Exit

out = Exit()
if sys.argv[1] == "bridge":
    import temporalio.bridge.temporal_sdk_bridge
marks = Path(sys.argv[2])
atexit.register(lambda: marks.write_text(marks.read_text() + "handler ran\\n"))
# An object whose finaliser writes: it runs in the interpreter's teardown only.
class Torn:
    def __del__(self):
        marks.write_text(marks.read_text() + "teardown ran\\n")
sys.modules["__torn__"] = Torn()  # type: ignore[assignment]
print("said", end="")  # left in stdout's buffer: the way out must flush it
marks.write_text("")
out.now(3)
"""


@pytest.mark.parametrize("loaded", ["bridge", "none"])
def test_the_way_out_keeps_status_output_and_handlers(tmp_path: Path, loaded: str) -> None:
    marks = tmp_path / "marks.txt"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, loaded, str(marks)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "said"
    ran = marks.read_text().splitlines()
    assert ran[0] == "handler ran"
    # With the bridge loaded the teardown is skipped; without it, it runs as usual.
    assert ran[1:] == ([] if loaded == "bridge" else ["teardown ran"])

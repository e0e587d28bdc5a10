"""A run that failed because its agent's answers were unusable asks the model again when
resumed: only answers the agent could use are replayed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from corral import load_team
from tests.conftest import SeenMessages
from tests.nodes.test_tools import WORKER

TEAM = WORKER + "guards: {max_validation_retries: 1}\n"


def test_a_run_failed_on_unusable_answers_asks_again_when_resumed(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write("script.yaml", "agents:\n  worker:\n" + "    - {raw: 'not json'}\n" * 2 + "then: auto\n")
    with load_team(write("team.yaml", TEAM)).compile(db=tmp_path / "w.db") as app:
        failed = app.run({"text": "q"}, run_id="u1")
        assert (failed.status, failed.errors[0].to_dict()["type"]) == ("failed", "HandoffError")
        seen = SeenMessages()
        done = app.resume("u1", config={"callbacks": [seen]})
        calls = app.ledger.calls("u1")
    assert done.status == "completed", done.errors
    assert len(seen.calls) == 1  # the model was asked again, once
    assert len(calls) == 3  # the two unusable answers stay billed

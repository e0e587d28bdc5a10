"""Bearer API keys (limited to named teams), the body size limit, 422 with field errors,
errors as JSON without a traceback, CORS off by default; ``/ok`` and ``/metrics``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_sync_client

from corral.errors import InputError
from corral.server import create_app, read_api_keys
from tests.server.conftest import Served, running, teams

ALL = "key-for-every-team-0001"
CHAIN = "key-for-the-chain-only"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("guarded")
    keys = read_api_keys(f"{ALL}  # every team\n{CHAIN} chain\n")
    app = create_app(teams(folder), db=folder / "w.db", api_keys=keys, max_body=4096)
    with running(app, folder) as found:
        yield found


def _client(served: Served, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=served.url, headers=headers)


def test_no_key_is_a_401_and_ok_is_open(guarded: Served) -> None:
    with _client(guarded, None) as http:
        refused = http.post("/assistants/search", json={})
        assert refused.status_code == 401
        assert refused.json() == {"detail": "send a valid API key: Authorization: Bearer KEY"}
        assert http.get("/threads/x", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get("/ok").json() == {"ok": True}
        assert http.get("/metrics").status_code == 401


def test_a_key_sees_only_its_teams(guarded: Served) -> None:
    full = get_sync_client(
        url=guarded.url, api_key=None, headers={"Authorization": f"Bearer {ALL}"}
    )
    chain = get_sync_client(url=guarded.url, headers={"Authorization": f"Bearer {CHAIN}"})
    found = sorted(a["graph_id"] for a in full.assistants.search())
    assert found == ["chain", "reviewed", "slow_review"]
    assert [a["graph_id"] for a in chain.assistants.search()] == ["chain"]
    thread = full.threads.create()["thread_id"]
    full.runs.wait(thread, "reviewed", input={"text": "secret"})
    for call in (
        lambda: chain.threads.get(thread),
        lambda: chain.threads.get_state(thread),
        lambda: chain.assistants.get("reviewed"),
        lambda: chain.runs.wait(None, "reviewed", input={"text": "x"}),
    ):
        with pytest.raises(httpx.HTTPStatusError) as hidden:
            call()
        assert hidden.value.response.status_code == 404
    assert thread not in [t["thread_id"] for t in chain.threads.search(limit=1000)]
    with pytest.raises(httpx.HTTPStatusError) as taken:  # its id cannot be taken over
        chain.threads.create(thread_id=thread)
    assert taken.value.response.status_code == 409
    for call in (
        lambda: chain.threads.create(thread_id=thread, if_exists="do_nothing"),
        lambda: chain.runs.wait(thread, "chain", input={}, if_not_exists="create"),
    ):
        with pytest.raises(httpx.HTTPStatusError) as hidden:
            call()
        assert hidden.value.response.status_code == 404
    assert full.threads.get(thread)["status"] == "interrupted"
    with _client(guarded, CHAIN) as http:
        assert http.get("/metrics").status_code == 403
        assert http.get("/corral/budget").status_code == 403
        other = {"namespace": ["corral", "reviewed", "global"], "key": "k", "value": {"v": 1}}
        assert http.put("/store/items", json=other).status_code == 404
        mine = {**other, "namespace": ["corral", "chain", "global"]}
        assert http.put("/store/items", json=mine).status_code == 204
        assert http.get("/corral/reviews").json() == []  # the paused run is not its team's
    with _client(guarded, ALL) as http:
        metrics = http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert 'corral_llm_calls_total{agent="solver",model="scripted"} 1.0' in metrics.text


def test_body_limit_and_field_errors(guarded: Served) -> None:
    with _client(guarded, ALL) as http:
        big = http.post("/threads", json={"metadata": {"x": "y" * 5000}})
        assert big.status_code == 413
        assert big.json() == {"detail": "the request body is over 4096 bytes"}
        bad = http.post("/threads/search", json={"limit": 0, "status": "sleepy"})
        assert bad.status_code == 422
        fields = {tuple(e["loc"]) for e in bad.json()["detail"]}
        assert fields == {("body", "limit"), ("body", "status")}
        missing = http.post("/runs/wait", json={"input": {}})
        assert missing.status_code == 422
        assert missing.json()["detail"][0]["loc"] == ["body", "assistant_id"]
        unserved = http.post("/runs", json={"assistant_id": "chain", "webhook": "http://x"})
        assert unserved.status_code == 422
        assert "webhook is not served" in unserved.text
        for field, value in (
            ("context", {"user": "u"}),
            ("durability", "exit"),
            ("on_completion", "delete"),
        ):
            asked = http.post("/runs", json={"assistant_id": "chain", field: value})
            assert asked.status_code == 422
            assert f"{field} " in asked.text
            assert "is not served" in asked.text
        gone = http.get("/threads/nope")
        assert gone.status_code == 404
        assert gone.json() == {"detail": "no thread 'nope'; create it with POST /threads"}
        assert "Traceback" not in bad.text + missing.text + gone.text


def test_cors_is_off_by_default(guarded: Served, tmp_path: Path) -> None:
    asked = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    with _client(guarded, ALL) as http:
        assert "access-control-allow-origin" not in http.get("/ok", headers=asked).headers
        assert http.options("/threads", headers=asked).status_code == 405
    allowed = create_app(teams(tmp_path), db=tmp_path / "w.db", cors_origins=["https://ui.example"])
    with running(allowed, tmp_path) as served, httpx.Client(base_url=served.url) as http:
        answer = http.get("/ok", headers={"Origin": "https://ui.example"})
        assert answer.headers["access-control-allow-origin"] == "https://ui.example"


def test_key_lines_are_checked() -> None:
    assert read_api_keys("k" * 16 + " a,b;" + "z" * 16) == {
        "k" * 16: frozenset({"a", "b"}),
        "z" * 16: None,
    }
    for text in ("short", "k" * 16 + " a b", "# nothing"):
        with pytest.raises(InputError):
            read_api_keys(text)

"""``/store/*`` over corral's scoped context through ``langgraph-sdk``'s store client:
the operator writes, reads and deletes global context (audited), never writes team or
private context, never reads private notes; expired items are gone."""

from __future__ import annotations

import time

import httpx
import pytest
from langgraph_sdk import get_sync_client

from corral import load_team
from tests.server.conftest import Served

GLOBAL = ["corral", "reviewed", "global"]


def test_global_context_put_get_search_delete(served: Served) -> None:
    store = get_sync_client(url=served.url).store
    store.put_item(GLOBAL, "policy", {"refunds": "never on Sundays"})
    item = store.get_item(GLOBAL, "policy")
    assert item["namespace"] == GLOBAL
    assert item["value"]["value"] == {"refunds": "never on Sundays"}
    assert item["value"]["by"] == "operator"
    found = store.search_items(["corral", "reviewed"])["items"]
    assert [(i["key"], i["value"]["value"]) for i in found] == [
        ("policy", {"refunds": "never on Sundays"})
    ]
    assert GLOBAL in store.list_namespaces(prefix=["corral"])["namespaces"]
    store.delete_item(GLOBAL, "policy")
    with pytest.raises(httpx.HTTPStatusError) as gone:
        store.get_item(GLOBAL, "policy")
    assert gone.value.response.status_code == 404
    with load_team(served.folder / "reviewed.yaml").compile(db=served.folder / "w.db") as app:
        audited = [(r["action"], r["verdict"]) for r in app.audit.rows("server")]
    assert ("write", "allowed") in audited
    assert ("delete", "allowed") in audited


def test_the_rules_hold_for_the_operator(served: Served) -> None:
    store = get_sync_client(url=served.url).store
    for namespace in (
        ["corral", "reviewed", "team", "front"],
        ["corral", "reviewed", "private", "solver"],
    ):
        with pytest.raises(httpx.HTTPStatusError) as denied:
            store.put_item(namespace, "k", {"v": 1})
        assert denied.value.response.status_code == 403
    with pytest.raises(httpx.HTTPStatusError) as private:
        store.get_item(["corral", "reviewed", "private", "solver"], "notes")
    assert private.value.response.status_code == 403
    assert "own agent only" in private.value.response.json()["detail"]
    with pytest.raises(httpx.HTTPStatusError) as foreign:
        store.put_item(["somewhere", "else", "global"], "k", {"v": 1})
    assert foreign.value.response.status_code == 422
    with pytest.raises(httpx.HTTPStatusError) as nobody:
        store.put_item(["corral", "nobody", "global"], "k", {"v": 1})
    assert nobody.value.response.status_code == 404


def test_an_expired_item_is_gone(served: Served) -> None:
    store = get_sync_client(url=served.url).store
    store.put_item(GLOBAL, "brief", {"v": 1}, ttl=0.0001)  # 6 ms
    time.sleep(0.05)
    with pytest.raises(httpx.HTTPStatusError) as gone:
        store.get_item(GLOBAL, "brief")
    assert gone.value.response.status_code == 404

"""Prometheus metrics of an app: tokens, cost, node durations, guard trips, tasks, budgets.

Each ``App`` has its own registry (no process-wide default), so several apps in one
service never mix their numbers. No run id is ever a label (it would grow without
bound). Expose them with ``app.metrics.text()``, ``app.metrics.wsgi_app()`` or
``app.metrics.serve(port)``.
"""

from __future__ import annotations

from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_wsgi_app,
    start_http_server,
)


class Metrics:
    """The metrics of one app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.tokens = Counter(
            "corral_llm_tokens_total", "Model tokens used.", ["agent", "model", "type"], registry=r
        )
        self.cost = Counter(
            "corral_llm_cost_usd_total",
            "Model cost in USD (known prices).",
            ["agent", "model"],
            registry=r,
        )
        self.calls = Counter(
            "corral_llm_calls_total", "Model calls made.", ["agent", "model"], registry=r
        )
        self.call_errors = Counter(
            "corral_llm_call_errors_total",
            "Model calls that failed (each attempt), by error type.",
            ["agent", "model", "error"],
            registry=r,
        )
        self.node_seconds = Histogram(
            "corral_node_duration_seconds",
            "Time an agent took for one piece of work.",
            ["agent"],
            registry=r,
        )
        self.guard_trips = Counter(
            "corral_guard_trips_total", "Guard trips, by guard.", ["guard"], registry=r
        )
        self.tasks_created = Counter("corral_tasks_created_total", "Subtasks created.", registry=r)
        self.budget_used = Gauge(
            "corral_budget_used_ratio",
            "Share of an agent's daily token budget used today.",
            ["agent"],
            registry=r,
        )
        self.runs = Counter(
            "corral_runs_total", "Runs ended, by team and status.", ["team", "status"], registry=r
        )

    def text(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)

    def wsgi_app(self) -> Any:
        """A WSGI app serving the metrics (mount it in a service)."""
        return make_wsgi_app(self.registry)

    def serve(self, port: int = 0, addr: str = "127.0.0.1") -> tuple[WSGIServer, Thread]:
        """Serve ``/metrics`` over HTTP in a background thread; port 0 picks a free one."""
        server, thread = start_http_server(port, addr=addr, registry=self.registry)
        return server, thread


class _Quiet:
    """A metric that counts nothing (every call is accepted and dropped)."""

    def labels(self, *values: str) -> _Quiet:
        return self

    def inc(self, amount: float = 1) -> None:
        return None

    def observe(self, amount: float) -> None:
        return None

    def set(self, value: float) -> None:
        return None


class QuietMetrics(Metrics):
    """Metrics that record nothing: for a graph built with no workspace, where nobody
    reads them (the App always has real ones)."""

    def __init__(self) -> None:
        super().__init__()
        quiet: Any = _Quiet()
        self.tokens = self.cost = self.calls = self.guard_trips = quiet
        self.tasks_created = self.runs = self.node_seconds = self.budget_used = quiet

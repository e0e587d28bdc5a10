"""Per-step cost of OpenTelemetry spans: corral with tracing off and on, beside plain LangGraph.

The 10-node agent chain of ``step_overhead.py`` (each node one scripted model call; no
checkpointer), run interleaved in rounds in one process: plain LangGraph, corral with
no tracer provider (OpenTelemetry's no-op), corral with an SDK ``TracerProvider``
whose processor hands every span to an exporter that drops it (so only the spans'
own cost is measured). Ratios are paired per round; the medians are reported.

    python benchmarks/otel_overhead.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from step_overhead import NODES, START_PAYLOAD, corral_team, plain_graph, timed

from corral.graphs import build_graph, wire


class _Drop(SpanExporter):
    """Takes every span and keeps none."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    plan = corral_team("agent").plan
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Drop()))
    off = build_graph(plan, wire(plan))
    on = build_graph(plan, wire(plan, tracer_provider=provider))
    plain = plain_graph("agent", None)
    graphs: dict[str, Callable[[int], Any]] = {
        "plain": lambda _: plain.invoke({"payload": START_PAYLOAD}),
        "off": lambda _: off.invoke(START_PAYLOAD),
        "on": lambda _: on.invoke(START_PAYLOAD),
    }
    for fn in graphs.values():
        fn(-1)
    times: dict[str, list[float]] = {k: [] for k in graphs}
    for _ in range(args.rounds):
        for name, fn in graphs.items():
            times[name].append(timed(fn, args.runs))
    med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    ratio = {
        pair: statistics.median(a / b for a, b in zip(times[x], times[y], strict=True))
        for pair, (x, y) in {"off/plain": ("off", "plain"), "on/off": ("on", "off")}.items()
    }
    print(
        f"{NODES}-node agent chain, us/step: plain {med['plain']:.1f}  corral off "
        f"{med['off']:.1f}  corral on {med['on']:.1f}  (on - off: {med['on'] - med['off']:.1f})"
    )
    print(f"paired ratios: off/plain {ratio['off/plain']:.3f}x  on/off {ratio['on/off']:.3f}x")


if __name__ == "__main__":
    main()

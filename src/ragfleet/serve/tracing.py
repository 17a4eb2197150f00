"""OpenTelemetry spans per pipeline stage (off by default).

With ``trace_exporter="console"`` or ``"otlp"`` each search / ask request becomes a span
with one child span per stage. The stages are timed inside the engine (``timings_ms``);
their spans are laid end to end from the request's start in the order the pipeline runs
them, with the measured durations — so a trace viewer shows the same waterfall as the
web page. The OTLP exporter needs ``opentelemetry-exporter-otlp`` and reads the usual
``OTEL_EXPORTER_OTLP_*`` environment variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ragfleet._optional import require
from ragfleet.errors import ConfigError

ORDER = ("embed", "analyze", "search", "merge", "fuse", "fetch", "rerank", "generate")


class Tracing:
    """A tracer provider with the configured exporter, or nothing when ``exporter="none"``."""

    def __init__(self, exporter: str = "none") -> None:
        self.enabled = exporter != "none"
        self._tracer: Any = None
        if not self.enabled:
            return
        sdk_trace = require("opentelemetry.sdk.trace", "serve")
        export = require("opentelemetry.sdk.trace.export", "serve")
        if exporter == "console":
            span_exporter: Any = export.ConsoleSpanExporter()
        elif exporter == "otlp":
            otlp = require("opentelemetry.exporter.otlp.proto.http.trace_exporter", "serve")
            span_exporter = otlp.OTLPSpanExporter()
        else:
            raise ConfigError(f"trace exporter must be none, console or otlp, got {exporter!r}")
        self.provider = sdk_trace.TracerProvider()
        self.provider.add_span_processor(export.BatchSpanProcessor(span_exporter))
        self._tracer = self.provider.get_tracer("ragfleet.serve")

    def record(
        self, name: str, start_ns: int, end_ns: int, timings_ms: Mapping[str, float],
        attributes: Mapping[str, Any],
    ) -> None:  # fmt: skip
        """One request span from ``start_ns`` to ``end_ns`` with a child per stage."""
        if self._tracer is None:
            return
        trace = require("opentelemetry.trace", "serve")
        root = self._tracer.start_span(name, start_time=start_ns, attributes=dict(attributes))
        ctx = trace.set_span_in_context(root)
        t = start_ns
        for stage in sorted(timings_ms, key=lambda s: ORDER.index(s) if s in ORDER else 99):
            if stage == "total":
                continue
            dur = int(float(timings_ms[stage]) * 1e6)
            span = self._tracer.start_span(stage, context=ctx, start_time=t)
            span.end(end_time=t + dur)
            t += dur
        root.end(end_time=end_ns)

    def shutdown(self) -> None:
        if self._tracer is not None:
            self.provider.shutdown()

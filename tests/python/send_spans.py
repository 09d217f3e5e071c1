"""Sends spans described in a JSON plan to slotel with the real OpenTelemetry Python SDK.

Usage: send_spans.py PLAN.json

The plan: {"endpoint": URL, "protocol": "grpc" | "http/protobuf", "compression": "gzip" |
null, "headers": {..}, "service": NAME, "spans": [{"name", "kind", "status", "duration_ns",
"end_offset_ns", "attributes"}]}. Every span ends `end_offset_ns` before now. Exits 1 when
the exporter reported a failure, so the caller knows the spans were not acknowledged.
"""

import json
import sys
import time

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

KINDS = {
    "internal": SpanKind.INTERNAL,
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}
STATUSES = {"unset": StatusCode.UNSET, "ok": StatusCode.OK, "error": StatusCode.ERROR}


class RecordingExporter:
    """Delegates to the real exporter and remembers whether any export failed."""

    def __init__(self, inner):
        self.inner = inner
        self.failures = 0
        self.exported = 0

    def export(self, spans):
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def make_exporter(plan):
    compression = None
    if plan.get("compression") == "gzip":
        from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression

        compression = Compression.Gzip
    headers = plan.get("headers") or None
    if plan["protocol"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=plan["endpoint"], insecure=True, compression=compression, headers=headers
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if compression is not None:
        from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

        compression = HttpCompression.Gzip
    return OTLPSpanExporter(
        endpoint=plan["endpoint"].rstrip("/") + "/v1/traces",
        compression=compression,
        headers=headers,
    )


def main():
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    exporter = RecordingExporter(make_exporter(plan))
    provider = TracerProvider(resource=Resource.create({"service.name": plan["service"]}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=512))
    tracer = provider.get_tracer("slotel-tests")
    now = time.time_ns()
    for s in plan["spans"]:
        end = now - s.get("end_offset_ns", 0)
        span = tracer.start_span(
            s["name"],
            kind=KINDS[s.get("kind", "internal")],
            start_time=end - s["duration_ns"],
            attributes=s.get("attributes") or {},
        )
        status = STATUSES[s.get("status", "unset")]
        if status != StatusCode.UNSET:
            span.set_status(Status(status))
        span.end(end_time=end)
    provider.shutdown()
    print(json.dumps({"exported": exporter.exported, "failures": exporter.failures}))
    sys.exit(1 if exporter.failures or exporter.exported != len(plan["spans"]) else 0)


if __name__ == "__main__":
    main()

"""Sends telemetry described in a JSON plan to slotel with the real OpenTelemetry Python SDK.

Usage: send_otlp.py PLAN.json

The plan: {"endpoint": URL, "protocol": "grpc" | "http/protobuf", "compression": "gzip" |
null, "headers": {..}, "certificate": PEM path or null, "service": NAME, and any of
  "spans": [{"name", "kind", "status", "duration_ns", "end_offset_ns", "attributes"}],
  "logs": [{"severity_number", "body", "attributes", "offset_ns"}],
  "metrics": {"counters": [{"name", "points": [{"attributes", "value"}]}],
              "histograms": [{"name", "points": [{"attributes", "value"}]}]}}.
Spans end and logs are stamped `*_offset_ns` before now. It prints what the exporters
acknowledged as JSON ({"spans", "logs", "data_points", "failures"}) and exits 1 when an
export failed, so the caller knows what was acknowledged.
"""

import json
import sys
import time

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
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

acked = {"spans": 0, "logs": 0, "data_points": 0, "failures": 0}


class Recording:
    """Delegates to a real exporter and counts what it acknowledged."""

    def __init__(self, inner, kind, success, count):
        self._inner = inner
        self._kind = kind
        self._success = success
        self._count = count

    def export(self, batch, *args, **kwargs):
        result = self._inner.export(batch, *args, **kwargs)
        if result == self._success:
            acked[self._kind] += self._count(batch)
        else:
            acked["failures"] += 1
        return result

    def __getattr__(self, name):
        return getattr(self._inner, name)


def points(metrics_data):
    n = 0
    for rm in metrics_data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                n += len(m.data.data_points)
    return n


def exporter_args(plan, signal_path):
    args = {"headers": plan.get("headers") or None}
    gzip = plan.get("compression") == "gzip"
    if plan["protocol"] == "grpc":
        from grpc import Compression, ssl_channel_credentials

        args["endpoint"] = plan["endpoint"]
        args["compression"] = Compression.Gzip if gzip else None
        if plan.get("certificate"):
            with open(plan["certificate"], "rb") as f:
                args["credentials"] = ssl_channel_credentials(root_certificates=f.read())
            args["insecure"] = False
        else:
            args["insecure"] = True
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression

        args["endpoint"] = plan["endpoint"].rstrip("/") + signal_path
        args["compression"] = Compression.Gzip if gzip else Compression.NoCompression
        if plan.get("certificate"):
            args["certificate_file"] = plan["certificate"]
    return args


def send_spans(plan, resource, now):
    if plan["protocol"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    exporter = Recording(
        OTLPSpanExporter(**exporter_args(plan, "/v1/traces")),
        "spans",
        SpanExportResult.SUCCESS,
        len,
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=512))
    tracer = provider.get_tracer("slotel-tests")
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


def send_logs(plan, resource, now):
    if plan["protocol"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    exporter = Recording(
        OTLPLogExporter(**exporter_args(plan, "/v1/logs")),
        "logs",
        LogRecordExportResult.SUCCESS,
        len,
    )
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = provider.get_logger("slotel-tests")
    for r in plan["logs"]:
        logger.emit(
            timestamp=now - r.get("offset_ns", 0),
            severity_number=SeverityNumber(r["severity_number"]),
            body=r.get("body", ""),
            attributes=r.get("attributes") or {},
        )
    provider.shutdown()


def send_metrics(plan, resource):
    if plan["protocol"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    exporter = Recording(
        OTLPMetricExporter(**exporter_args(plan, "/v1/metrics")),
        "data_points",
        MetricExportResult.SUCCESS,
        points,
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("slotel-tests")
    for c in plan["metrics"].get("counters", []):
        counter = meter.create_counter(c["name"])
        for p in c["points"]:
            counter.add(p["value"], attributes=p.get("attributes") or {})
    for h in plan["metrics"].get("histograms", []):
        hist = meter.create_histogram(
            h["name"],
            unit=h.get("unit", "s"),
            explicit_bucket_boundaries_advisory=h.get("boundaries"),
        )
        for p in h["points"]:
            hist.record(p["value"], attributes=p.get("attributes") or {})
    provider.shutdown()


def main():
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    resource = Resource.create({"service.name": plan["service"]})
    now = time.time_ns()
    if plan.get("spans"):
        send_spans(plan, resource, now)
    if plan.get("logs"):
        send_logs(plan, resource, now)
    if plan.get("metrics"):
        send_metrics(plan, resource)
    print(json.dumps(acked))
    want_spans = len(plan.get("spans") or [])
    want_logs = len(plan.get("logs") or [])
    ok = acked["failures"] == 0 and acked["spans"] == want_spans and acked["logs"] == want_logs
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

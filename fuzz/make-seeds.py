#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs into fuzz/seeds/TARGET/.

Trace exports are encoded by the OpenTelemetry Python SDK's own OTLP encoder (the bytes
a Python service sends); metrics and logs are built with the OTLP protobuf classes the
SDK ships. Every item is dated just before the fuzz engine's clock (2026-01-01), so that
the seeds reach counting, not only the checks. Run with the test environment's Python:
`.venv/bin/python fuzz/make-seeds.py`.
"""

import base64
import gzip
import json
import os
import struct
import sys

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

NOW = 1_767_225_600_000_000_000  # slotel_fuzz::NOW_NANOS
MS = 1_000_000
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


class CountingIds(IdGenerator):
    """Ids that are the same on every run, so that the seeds are too."""

    def __init__(self):
        self.n = 0

    def generate_span_id(self):
        self.n += 1
        return self.n

    def generate_trace_id(self):
        self.n += 1
        return (self.n << 64) | self.n


def sdk_spans(service, n, bad_every, attrs):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        id_generator=CountingIds(),
        resource=SdkResource.create(
            {
                "service.name": service,
                "service.instance.id": "seed",
                "deployment.environment": "prod",
            }
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("fuzz-seeds", "1.0")
    for i in range(n):
        end = NOW - 60_000 * MS + i * MS
        duration = (2000 if i % 3 == 0 else 40) * MS
        span = tracer.start_span(
            "POST /api/checkout", kind=SpanKind.SERVER, start_time=end - duration
        )
        for k, v in attrs(i).items():
            span.set_attribute(k, v)
        if bad_every and i % bad_every == 0:
            span.set_status(Status(StatusCode.ERROR, "boom"))
            span.add_event("exception", {"exception.type": "ValueError"}, timestamp=end - MS)
        else:
            span.set_status(Status(StatusCode.OK))
        span.end(end_time=end)
    return encode_spans(exporter.get_finished_spans())


def kv(key, value):
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        return KeyValue(
            key=key, value=AnyValue(array_value=ArrayValue(values=[kv("", v).value for v in value]))
        )
    return KeyValue(key=key, value=AnyValue(string_value=value))


def resource(service):
    return Resource(attributes=[kv("service.name", service)])


def metrics():
    t = NOW - 60_000 * MS
    sum_points = [
        metrics_pb2.NumberDataPoint(
            attributes=[kv("http.response.status_code", code)],
            start_time_unix_nano=t - 600_000 * MS,
            time_unix_nano=t,
            as_int=count,
        )
        for code, count in (("200", 970), ("503", 30))
    ]
    histogram = metrics_pb2.HistogramDataPoint(
        start_time_unix_nano=t - 600_000 * MS,
        time_unix_nano=t,
        count=100,
        sum=12.5,
        bucket_counts=[10, 60, 25, 5],
        explicit_bounds=[0.05, 0.25, 1.0],
        min=0.001,
        max=3.0,
    )
    exponential = metrics_pb2.ExponentialHistogramDataPoint(
        start_time_unix_nano=t - 600_000 * MS,
        time_unix_nano=t,
        count=10,
        sum=1.5,
        scale=3,
        zero_count=1,
        positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=-20, bucket_counts=[4, 5]),
    )
    gauge = metrics_pb2.NumberDataPoint(time_unix_nano=t, as_double=0.5)
    temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    ms = [
        metrics_pb2.Metric(
            name="http.server.requests",
            sum=metrics_pb2.Sum(
                data_points=sum_points, aggregation_temporality=temporality, is_monotonic=True
            ),
        ),
        metrics_pb2.Metric(
            name="http.server.request.duration",
            unit="s",
            histogram=metrics_pb2.Histogram(
                data_points=[histogram], aggregation_temporality=temporality
            ),
        ),
        metrics_pb2.Metric(
            name="http.server.request.duration",
            unit="s",
            exponential_histogram=metrics_pb2.ExponentialHistogram(
                data_points=[exponential], aggregation_temporality=temporality
            ),
        ),
        metrics_pb2.Metric(name="queue.fill", gauge=metrics_pb2.Gauge(data_points=[gauge])),
    ]
    return ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=resource("api"), scope_metrics=[metrics_pb2.ScopeMetrics(metrics=ms)]
            )
        ]
    )


def logs():
    t = NOW - 60_000 * MS
    records = [
        logs_pb2.LogRecord(
            time_unix_nano=t + i * MS,
            observed_time_unix_nano=t + i * MS,
            severity_number=17 if i % 4 == 0 else 9,
            severity_text="ERROR" if i % 4 == 0 else "INFO",
            body=AnyValue(string_value="charge %d" % i),
            attributes=[kv("event", "charge"), kv("amount", 12.5)],
            trace_id=bytes(range(1, 17)),
            span_id=bytes(range(1, 9)),
        )
        for i in range(8)
    ]
    return ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=resource("payments"),
                scope_logs=[logs_pb2.ScopeLogs(log_records=records)],
            )
        ]
    )


def otlp_json(message):
    """OTLP/JSON as the specification has it: ids in hex, enums as numbers."""
    doc = json_format.MessageToDict(message, use_integers_for_enums=True)

    def fix(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                    node[k] = base64.b64decode(v).hex()
                else:
                    fix(v)
        elif isinstance(node, list):
            for v in node:
                fix(v)

    fix(doc)
    return json.dumps(doc)


def wal_payload(tenant, signal, body):
    t = tenant.encode()
    return struct.pack("<H", len(t)) + t + bytes([signal]) + struct.pack("<q", NOW) + body


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def segment(payloads):
    """The wal target's odd form: a segment's bytes as the log writes them."""
    return bytes([1]) + b"".join(
        struct.pack("<II", len(p), crc32c(p)) + p for p in payloads
    )


def framed(payloads):
    """The wal target's even form: a u16 length before each payload."""
    return bytes([0]) + b"".join(struct.pack("<H", len(p)) + p for p in payloads)


PROMQL = [
    "slotel_slo_sli",
    'slotel_slo_sli{slo="checkout-availability"}',
    'slotel_slo_error_budget_remaining{slo=~"checkout.*"}',
    'slotel_slo_burn_rate{window="1h"} > 14.4',
    'max by (slo) (slotel_slo_burn_rate{window=~"5m|1h"})',
    "sum(slotel_slo_events_total) by (service)",
    "rate(slotel_slo_events_total[5m])",
    "sum(rate(slotel_slo_good_events_total[30m])) / sum(rate(slotel_slo_events_total[30m]))",
    "increase(slotel_slo_events_total[1h] offset 10m)",
    "avg_over_time(slotel_slo_sli[1h])",
    "min_over_time(slotel_slo_error_budget_remaining[6h]) < bool 0.5",
    'slotel_slo_latency_seconds{quantile="0.99"} * 1000',
    "clamp_min(slotel_slo_error_budget_remaining, 0)",
    "abs(-slotel_slo_sli) + 1 - 2 * 3 / 4 % 5 ^ 2",
    "count(slotel_slo_sli) without (service)",
    "slotel_slo_alert_state",
    'ALERTS{alertstate="firing"}',
    'slotel_slo_sli unless on(slo) slotel_slo_alert{severity="page"}',
    "vector(1) and on() absent(nothing)",
    "time() - 60",
    "scalar(sum(slotel_slo_objective))",
]

QUERY_RANGES = [
    ("slotel_slo_sli", "1767222000", "1767225600", "60"),
    ('slotel_slo_burn_rate{window="1h"}', "2025-12-31T23:00:00Z", "2026-01-01T00:00:00Z", "5m"),
    ("rate(slotel_slo_events_total[5m])", "1767218400", "1767225600", "300", "5s"),
]


def main():
    spans = sdk_spans(
        "checkout",
        20,
        5,
        lambda i: {
            "http.route": "/api/checkout",
            "http.request.method": "POST" if i % 2 else "PUT",
            "http.response.status_code": 503 if i % 5 == 0 else 200,
            "user_agent.original": "curl/8.5.0" if i % 7 else "googlebot",
            "server.port": 8080,
            "sampled": True,
            "ratio": 0.25,
            "tags": ["a", "b"],
        },
    )
    write("otlp_traces", "sdk-checkout.pb", spans.SerializeToString())
    small = sdk_spans("catalog", 2, 0, lambda i: {"http.route": "/api/items/{id}"})
    write("otlp_traces", "sdk-catalog.pb", small.SerializeToString())
    write("otlp_metrics", "metrics.pb", metrics().SerializeToString())
    write("otlp_logs", "logs.pb", logs().SerializeToString())

    write("otlp_json", "traces.json", b"\x00" + otlp_json(small).encode())
    write("otlp_json", "metrics.json", b"\x01" + otlp_json(metrics()).encode())
    write("otlp_json", "logs.json", b"\x02" + otlp_json(logs()).encode())

    body = small.SerializeToString()
    write("decompress", "gzip.bin", b"\x00" + gzip.compress(body))
    write("decompress", "gzip-roundtrip.bin", b"\x02" + body)
    write("decompress", "zstd-roundtrip.bin", b"\x03" + body)
    write("decompress", "gzip-bomb.bin", b"\x00" + gzip.compress(b"\x00" * (1 << 20)))

    records = [
        wal_payload("default", 0, body),
        wal_payload("shop", 1, metrics().SerializeToString()),
        wal_payload("default", 2, logs().SerializeToString()),
    ]
    write("wal", "records.bin", framed(records))
    write("wal", "segment.bin", segment(records))
    write("wal", "torn.bin", segment(records)[:-7])

    # Files that refer to each other, in the slo_files target's several-files form.
    corpus = os.path.join(os.path.dirname(ROOT), "..", "spec", "tests", "corpus")
    folder = os.path.join(corpus, "openslo", "valid", "across-files")
    texts = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name)) as f:
            texts.append(f.read())
    write("slo_files", "openslo-across-files.yaml", "\n#---\n".join(texts))

    for i, q in enumerate(PROMQL):
        write("promql", "instant-%02d" % i, q)
    for i, parts in enumerate(QUERY_RANGES):
        write("promql", "range-%02d" % i, "\0".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

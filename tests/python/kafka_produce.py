"""Writes records to Kafka as the OpenTelemetry Collector's Kafka exporter does
(encoding otlp_proto: the value is an export request's protobuf bytes), with a client
that is not slotel's.

Usage: kafka_produce.py BROKERS < records.jsonl

Each input line is a JSON object: topic, partition, value (hex), and optionally key and
headers ([[name, value], ...]). Every record is written with acks=all; the script prints
one JSON object per record with its topic, partition and offset, in input order, and
fails if the brokers did not take every record.
"""

import json
import sys

from confluent_kafka import Producer


def main():
    brokers = sys.argv[1]
    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": 30000,
        }
    )
    written = []
    failures = []

    def delivered(err, msg, index):
        if err is not None:
            failures.append("record %d: %s" % (index, err))
        else:
            written.append((index, msg.topic(), msg.partition(), msg.offset()))

    for index, line in enumerate(sys.stdin):
        r = json.loads(line)
        producer.produce(
            r["topic"],
            value=bytes.fromhex(r["value"]),
            key=None if r.get("key") is None else r["key"].encode(),
            partition=r["partition"],
            headers=[(k, v.encode()) for k, v in r.get("headers", [])],
            on_delivery=lambda err, msg, index=index: delivered(err, msg, index),
        )
        producer.poll(0)
    left = producer.flush(60)
    if left or failures:
        sys.exit("not written: %d records left, failures %r" % (left, failures))
    for _, topic, partition, offset in sorted(written):
        print(json.dumps({"topic": topic, "partition": partition, "offset": offset}))


main()

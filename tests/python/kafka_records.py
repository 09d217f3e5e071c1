"""Reads every record of Kafka topics, as a consumer other than slotel would.

Usage: kafka_records.py BROKERS TOPIC [TOPIC...]

Reads each partition of each topic from its start up to its high watermark (what the
brokers hold when the script starts, so the read ends) and prints one JSON object per
record: topic, partition, offset, key, headers, timestamp (ms) and the value in hex.
"""

import json
import sys
import uuid

from confluent_kafka import Consumer, TopicPartition


def main():
    brokers, topics = sys.argv[1], sys.argv[2:]
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": "kafka-records-" + uuid.uuid4().hex,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    wanted = []
    for topic in topics:
        meta = consumer.list_topics(topic, timeout=30)
        for p in sorted(meta.topics[topic].partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high > low:
                wanted.append((topic, p, low, high))
    consumer.assign([TopicPartition(t, p, low) for t, p, low, _ in wanted])
    remaining = {(t, p): high for t, p, _, high in wanted}
    while remaining:
        msg = consumer.poll(30)
        if msg is None:
            sys.exit("no record within 30 s; still waiting for %r" % remaining)
        if msg.error():
            sys.exit("consumer error: %s" % msg.error())
        key = (msg.topic(), msg.partition())
        print(
            json.dumps(
                {
                    "topic": msg.topic(),
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "key": None if msg.key() is None else msg.key().decode(),
                    "headers": [[k, v.decode()] for k, v in (msg.headers() or [])],
                    "timestamp": msg.timestamp()[1],
                    "value": msg.value().hex(),
                }
            )
        )
        if msg.offset() + 1 >= remaining.get(key, 0):
            remaining.pop(key, None)
    consumer.close()


main()

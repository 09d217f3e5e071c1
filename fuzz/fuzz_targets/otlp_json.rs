//! An OTLP/JSON body of any signal (the first byte picks it) as the HTTP receiver takes
//! it: decoded, checked, encoded as protobuf, which the wire scanner (traces) or `prost`
//! (metrics, logs) reads back with the same items, then counted by compute.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use slotel_fuzz::{NOW_NANOS, TENANT, count_decoded, engine, limits};
use slotel_ingest::validate;
use slotel_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use slotel_proto::{Batch, Payload};

fuzz_target!(|data: &[u8]| {
    let Some((&signal, body)) = data.split_first() else {
        return;
    };
    let limits = limits();
    match signal % 3 {
        0 => {
            let Ok(mut req) = serde_json::from_slice::<ExportTraceServiceRequest>(body) else {
                return;
            };
            let before = slotel_proto::span_count(&req) as u64;
            let checked = validate::traces(&mut req, NOW_NANOS, &limits);
            let bytes = req.encode_to_vec();
            let (spans, again) = validate::trace_bytes(&bytes, NOW_NANOS, &limits)
                .expect("an encoded request scans");
            assert_eq!(spans, before - checked.rejected());
            assert!(!again.changed(), "checks are not idempotent: {again:?}");
            engine().ingest(&Batch::trace_bytes(TENANT.into(), Bytes::from(bytes)));
        }
        1 => {
            let Ok(mut req) = serde_json::from_slice::<ExportMetricsServiceRequest>(body) else {
                return;
            };
            validate::metrics(&mut req, NOW_NANOS, &limits);
            count_decoded(req, Payload::Metrics);
        }
        _ => {
            let Ok(mut req) = serde_json::from_slice::<ExportLogsServiceRequest>(body) else {
                return;
            };
            validate::logs(&mut req, NOW_NANOS, &limits);
            count_decoded(req, Payload::Logs);
        }
    }
});

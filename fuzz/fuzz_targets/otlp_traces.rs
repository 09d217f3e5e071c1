//! A trace export's protobuf bytes as the receivers take them: the wire scanner's checks
//! must agree with `prost` on what decodes and how many spans it holds; when the checks
//! change the request, the decoded path checks, re-encodes, and the re-encoded bytes pass
//! the scanner unchanged; compute counts whatever the receiver accepted.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use slotel_fuzz::{NOW_NANOS, TENANT, engine, limits};
use slotel_ingest::validate;
use slotel_proto::Batch;
use slotel_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;

fuzz_target!(|data: &[u8]| {
    let limits = limits();
    let scanned = validate::trace_bytes(data, NOW_NANOS, &limits);
    let decoded = ExportTraceServiceRequest::decode(data);
    let body = match (scanned, decoded) {
        (Err(_), Err(_)) => return,
        (Ok((spans, checked)), Ok(mut req)) => {
            assert_eq!(spans as usize, slotel_proto::span_count(&req));
            if checked.changed() {
                let again = validate::traces(&mut req, NOW_NANOS, &limits);
                assert_eq!(
                    again, checked,
                    "the scanner and the decoded checks disagree"
                );
                let bytes = req.encode_to_vec();
                let (kept, rechecked) = validate::trace_bytes(&bytes, NOW_NANOS, &limits)
                    .expect("a checked request re-encoded scans");
                assert_eq!(kept, spans - checked.rejected());
                assert!(
                    !rechecked.changed(),
                    "checks are not idempotent: {rechecked:?}"
                );
                Bytes::from(bytes)
            } else {
                Bytes::copy_from_slice(data)
            }
        }
        (scanned, decoded) => {
            panic!(
                "the scanner and prost disagree: {scanned:?} against {:?}",
                decoded.err()
            )
        }
    };
    engine().ingest(&Batch::trace_bytes(TENANT.into(), body));
});

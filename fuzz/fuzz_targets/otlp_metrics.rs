//! A metrics export's protobuf bytes as the receivers take them: decoded, checked,
//! counted by compute, and the checked request re-encoded decodes to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use slotel_fuzz::{NOW_NANOS, TENANT, engine, limits};
use slotel_ingest::validate;
use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use slotel_proto::{Batch, Payload};

fuzz_target!(|data: &[u8]| {
    let Ok(mut req) = ExportMetricsServiceRequest::decode(data) else {
        return;
    };
    let before = slotel_proto::data_point_count(&req) as u64;
    let checked = validate::metrics(&mut req, NOW_NANOS, &limits());
    assert_eq!(
        slotel_proto::data_point_count(&req) as u64,
        before - checked.rejected()
    );
    let bytes = req.encode_to_vec();
    // Compared as bytes: a NaN value is not equal to itself.
    let again = ExportMetricsServiceRequest::decode(&*bytes).expect("re-encoded decodes");
    assert_eq!(again.encode_to_vec(), bytes);
    engine().ingest(&Batch {
        tenant: TENANT.into(),
        size_bytes: bytes.len(),
        payload: Payload::Metrics(req),
        raw: None,
        received_nanos: NOW_NANOS as i64,
    });
});

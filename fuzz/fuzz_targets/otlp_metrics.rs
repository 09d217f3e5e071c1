//! A metrics export's protobuf bytes as the receivers take them: decoded, checked,
//! counted by compute, and the checked request encoded decodes to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use slotel_fuzz::{NOW_NANOS, count_decoded, limits};
use slotel_ingest::validate;
use slotel_proto::Payload;
use slotel_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;

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
    count_decoded(req, Payload::Metrics);
});

//! A logs export's protobuf bytes as the receivers take them: decoded, checked, counted
//! by compute, and the checked request re-encoded decodes to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use slotel_fuzz::{NOW_NANOS, count_decoded, limits};
use slotel_ingest::validate;
use slotel_proto::Payload;
use slotel_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(mut req) = ExportLogsServiceRequest::decode(data) else {
        return;
    };
    let before = slotel_proto::log_record_count(&req) as u64;
    let checked = validate::logs(&mut req, NOW_NANOS, &limits());
    assert_eq!(
        slotel_proto::log_record_count(&req) as u64,
        before - checked.rejected()
    );
    count_decoded(req, Payload::Logs);
});

//! A logs export's protobuf bytes as the receivers take them: decoded, checked, counted
//! by compute, and the checked request re-encoded decodes to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use slotel_fuzz::{NOW_NANOS, TENANT, engine, limits};
use slotel_ingest::validate;
use slotel_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use slotel_proto::{Batch, Payload};

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
    let bytes = req.encode_to_vec();
    // Compared as bytes: a NaN value is not equal to itself.
    let again = ExportLogsServiceRequest::decode(&*bytes).expect("re-encoded decodes");
    assert_eq!(again.encode_to_vec(), bytes);
    engine().ingest(&Batch {
        tenant: TENANT.into(),
        size_bytes: bytes.len(),
        payload: Payload::Logs(req),
        raw: None,
        received_nanos: NOW_NANOS as i64,
    });
});

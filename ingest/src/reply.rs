//! The one place where refusals become protocol replies: gRPC status codes with a
//! `RetryInfo`, or HTTP status codes with `Retry-After` and a `google.rpc.Status` body.
//! Internal details never reach the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use slotel_proto::Error;
use slotel_proto::rpc::{self, code};

/// What went wrong with a request, from the client's side.
#[derive(Debug)]
pub enum Refusal {
    /// The request is malformed; retrying it cannot help.
    Invalid(String),
    /// A stage refused the batch.
    Stage(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Stage(e)
    }
}

impl Refusal {
    fn parts(&self) -> (i32, StatusCode, String, Option<std::time::Duration>) {
        match self {
            Refusal::Invalid(msg) => (
                code::INVALID_ARGUMENT,
                StatusCode::BAD_REQUEST,
                msg.clone(),
                None,
            ),
            Refusal::Stage(e @ Error::Invalid(_)) => (
                code::INVALID_ARGUMENT,
                StatusCode::BAD_REQUEST,
                e.to_string(),
                None,
            ),
            Refusal::Stage(e @ Error::Full { .. }) => (
                code::RESOURCE_EXHAUSTED,
                StatusCode::TOO_MANY_REQUESTS,
                e.to_string(),
                e.retry_after(),
            ),
            Refusal::Stage(e @ Error::Unavailable(_)) => (
                code::UNAVAILABLE,
                StatusCode::SERVICE_UNAVAILABLE,
                e.to_string(),
                e.retry_after(),
            ),
        }
    }

    /// The gRPC status for this refusal.
    pub fn to_grpc(&self) -> tonic::Status {
        let (code, _, message, retry) = self.parts();
        let details = rpc::Status::new(code, message.clone(), retry).encode_to_vec();
        tonic::Status::with_details(tonic::Code::from(code), message, details.into())
    }

    /// The HTTP response for this refusal, with a protobuf `google.rpc.Status` body.
    pub fn to_http(&self) -> Response {
        let (code, status, message, retry) = self.parts();
        let body = rpc::Status::new(code, message, retry).encode_to_vec();
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::http::PROTOBUF),
        );
        if let Some(d) = retry {
            h.insert(header::RETRY_AFTER, HeaderValue::from(d.as_secs().max(1)));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn full_is_retryable_with_a_hint() {
        let r = Refusal::Stage(Error::Full {
            what: "the ingest queue",
            retry_after: Duration::from_secs(2),
        });
        let g = r.to_grpc();
        assert_eq!(g.code(), tonic::Code::ResourceExhausted);
        let st = rpc::Status::decode(g.details()).unwrap();
        assert_eq!(st.details[0].type_url, rpc::RETRY_INFO_TYPE_URL);
        let info = rpc::RetryInfo::decode(st.details[0].value.as_slice()).unwrap();
        assert_eq!(info.retry_delay.unwrap().seconds, 2);
        let h = r.to_http();
        assert_eq!(h.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn invalid_is_permanent() {
        let r = Refusal::Invalid("bad".into());
        assert_eq!(r.to_grpc().code(), tonic::Code::InvalidArgument);
        let h = r.to_http();
        assert_eq!(h.status(), StatusCode::BAD_REQUEST);
        assert!(h.headers().get(header::RETRY_AFTER).is_none());
    }
}

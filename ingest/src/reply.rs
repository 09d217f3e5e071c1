//! The one place where refusals become protocol replies: gRPC status codes with a
//! `RetryInfo`, or HTTP status codes with `Retry-After` and a `google.rpc.Status` body in
//! the request's encoding. Internal details never reach the client.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde_json::json;
use slotel_proto::Error;
use slotel_proto::rpc::{self, code};

/// The body encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The content type of replies in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => crate::http::PROTOBUF,
            Encoding::Json => crate::http::JSON,
        }
    }
}

/// Why a request was not (fully) taken.
#[derive(Debug)]
pub enum Refusal {
    /// The request is malformed; retrying it cannot help.
    Invalid(String),
    /// Missing or wrong credentials.
    Unauthenticated,
    /// The body is over a size limit.
    TooLarge(String),
    /// The content type or encoding is not one slotel reads.
    Unsupported(String),
    /// Too many requests at once; retry later.
    Busy,
    /// The requests in flight hold the memory budget (its bytes); retry later.
    OverBudget(usize),
    /// The request took longer than the server allows.
    Timeout,
    /// A stage refused the batch.
    Stage(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Stage(e)
    }
}

/// How long a client is asked to wait when the server is busy.
const BUSY_RETRY: Duration = Duration::from_secs(1);

impl Refusal {
    /// The `reason` label of the refusal in `/metrics`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Invalid(_) => "invalid",
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::TooLarge(_) => "too_large",
            Refusal::Unsupported(_) => "unsupported",
            Refusal::Busy => "too_many_requests",
            Refusal::OverBudget(_) => "memory",
            Refusal::Timeout => "timeout",
            Refusal::Stage(Error::Full { .. }) => "log_full",
            Refusal::Stage(Error::Unavailable(_)) => "unavailable",
            Refusal::Stage(Error::Invalid(_)) => "invalid",
        }
    }

    fn parts(&self) -> (i32, StatusCode, String, Option<Duration>) {
        let msg = match self {
            Refusal::Invalid(m) | Refusal::TooLarge(m) | Refusal::Unsupported(m) => m.clone(),
            Refusal::Unauthenticated => "missing or invalid bearer token".to_string(),
            Refusal::Busy => "too many concurrent requests, retry later".to_string(),
            Refusal::OverBudget(b) => format!(
                "the requests in flight hold the memory budget of {b} bytes (limits.max_inflight_bytes), retry later"
            ),
            Refusal::Timeout => "the request took too long".to_string(),
            Refusal::Stage(e) => e.to_string(),
        };
        match self {
            Refusal::Invalid(_) | Refusal::Stage(Error::Invalid(_)) => {
                (code::INVALID_ARGUMENT, StatusCode::BAD_REQUEST, msg, None)
            }
            Refusal::Unauthenticated => {
                (code::UNAUTHENTICATED, StatusCode::UNAUTHORIZED, msg, None)
            }
            Refusal::TooLarge(_) => (
                code::INVALID_ARGUMENT,
                StatusCode::PAYLOAD_TOO_LARGE,
                msg,
                None,
            ),
            Refusal::Unsupported(_) => (
                code::INVALID_ARGUMENT,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                msg,
                None,
            ),
            Refusal::Busy | Refusal::OverBudget(_) => (
                code::RESOURCE_EXHAUSTED,
                StatusCode::TOO_MANY_REQUESTS,
                msg,
                Some(BUSY_RETRY),
            ),
            Refusal::Timeout => (
                code::DEADLINE_EXCEEDED,
                StatusCode::REQUEST_TIMEOUT,
                msg,
                None,
            ),
            Refusal::Stage(e @ Error::Full { .. }) => (
                code::RESOURCE_EXHAUSTED,
                StatusCode::TOO_MANY_REQUESTS,
                msg,
                e.retry_after(),
            ),
            Refusal::Stage(e @ Error::Unavailable(_)) => (
                code::UNAVAILABLE,
                StatusCode::SERVICE_UNAVAILABLE,
                msg,
                e.retry_after(),
            ),
        }
    }

    /// The gRPC status for this refusal, with a `RetryInfo` detail when retryable.
    pub fn to_grpc(&self) -> tonic::Status {
        let (code, _, message, retry) = self.parts();
        // As gRPC servers answer them: a message over the size limit is
        // RESOURCE_EXHAUSTED (without RetryInfo: retrying it cannot help), an encoding
        // the server does not read UNIMPLEMENTED.
        let code = match self {
            Refusal::TooLarge(_) => code::RESOURCE_EXHAUSTED,
            Refusal::Unsupported(_) => code::UNIMPLEMENTED,
            _ => code,
        };
        let details = rpc::Status::new(code, message.clone(), retry).encode_to_vec();
        tonic::Status::with_details(tonic::Code::from(code), message, details.into())
    }

    /// The HTTP response for this refusal: a `google.rpc.Status` body in `encoding`, and
    /// `Retry-After` when retryable.
    pub fn to_http(&self, encoding: Encoding) -> Response {
        let (code, status, message, retry) = self.parts();
        let body = match encoding {
            Encoding::Protobuf => rpc::Status::new(code, message, retry).encode_to_vec(),
            Encoding::Json => {
                let details: Vec<_> = retry
                    .map(|d| {
                        json!({
                            "@type": rpc::RETRY_INFO_TYPE_URL,
                            "retryDelay": format!("{}s", d.as_secs()),
                        })
                    })
                    .into_iter()
                    .collect();
                serde_json::to_vec(&json!({ "code": code, "message": message, "details": details }))
                    .unwrap_or_default()
            }
        };
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(encoding.content_type()),
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
        let h = r.to_http(Encoding::Protobuf);
        assert_eq!(h.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn invalid_is_permanent_and_json_when_asked() {
        let r = Refusal::Invalid("bad".into());
        assert_eq!(r.to_grpc().code(), tonic::Code::InvalidArgument);
        let h = r.to_http(Encoding::Json);
        assert_eq!(h.status(), StatusCode::BAD_REQUEST);
        assert_eq!(h.headers()[header::CONTENT_TYPE], "application/json");
        assert!(h.headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(
            Refusal::Unauthenticated.to_grpc().code(),
            tonic::Code::Unauthenticated
        );
    }
}

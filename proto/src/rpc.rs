//! `google.rpc.Status`, which OTLP/HTTP uses as the body of every error response.
//!
//! Declared here with `prost` derives because `opentelemetry-proto` does not ship it.

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    /// The type of the message in `value`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// A `google.rpc.Code` value.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// A message for the client, in English.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Details such as `google.rpc.RetryInfo`.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.rpc.Code` values slotel uses.
pub mod code {
    /// The request is malformed.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// The deadline passed.
    pub const DEADLINE_EXCEEDED: i32 = 4;
    /// Out of capacity; retry later.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// The server does not do what was asked (an encoding it does not read).
    pub const UNIMPLEMENTED: i32 = 12;
    /// Not available now; retry later.
    pub const UNAVAILABLE: i32 = 14;
    /// Missing or wrong credentials.
    pub const UNAUTHENTICATED: i32 = 16;
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Duration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds past `seconds`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.rpc.RetryInfo`: how long a client should wait before retrying.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    /// The delay.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<Duration>,
}

/// The `type_url` of [`RetryInfo`] inside an [`Any`].
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

impl Status {
    /// A status with `code` and `message`, and a `RetryInfo` detail when `retry_after` is set.
    pub fn new(
        code: i32,
        message: impl Into<String>,
        retry_after: Option<std::time::Duration>,
    ) -> Self {
        use prost::Message;
        let details = retry_after
            .map(|d| Any {
                type_url: RETRY_INFO_TYPE_URL.to_string(),
                value: RetryInfo {
                    retry_delay: Some(Duration {
                        seconds: d.as_secs() as i64,
                        nanos: d.subsec_nanos() as i32,
                    }),
                }
                .encode_to_vec(),
            })
            .into_iter()
            .collect();
        Self {
            code,
            message: message.into(),
            details,
        }
    }
}

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
    /// Out of capacity; retry later.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// Not available now; retry later.
    pub const UNAVAILABLE: i32 = 14;
    /// Missing or wrong credentials.
    pub const UNAUTHENTICATED: i32 = 16;
}

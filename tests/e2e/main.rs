//! Black-box tests: the real `slotel` binary on ephemeral ports, driven by real clients
//! (the OpenTelemetry Python SDK, tonic, HTTP) and by the `loadtest` binary.

mod alerting;
mod clock_skew;
mod dashboards;
mod durability;
mod examples;
mod explain;
mod formats;
mod harness;
mod hostile;
mod ingest;
#[cfg(feature = "kafka")]
mod kafka;
mod loadtest;
mod malformed;
mod openapi;
mod otel_sdk;
mod prometheus;
mod reload;
mod rust_sdk;
mod storage;
mod tenants;
mod validate;

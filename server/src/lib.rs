//! The slotel server as a library: its configuration ([`config`]) composed from every
//! crate's section, and [`App`], which wires receivers, queue, engine, storage, alerting
//! and the API together so that the whole server can be started (and tested) in-process.
//!
//! Flow: [`config::ServeConfig::resolve`] merges flags over the config file over the
//! defaults; [`App::build`] starts everything and listens; [`App::run`] waits for the
//! shutdown signal and stops in order (servers, alerts, queue, storage's last flush).
//! With the `kafka` feature, `IngestNode` is `--role ingest`: the receivers writing to
//! Kafka; `ComputeNode` is `--role compute`: partitions of those topics counted, each
//! with its checkpoint in the shared storage.

#![warn(missing_docs, unreachable_pub)]

mod app;
#[cfg(feature = "kafka")]
mod compute_node;
pub mod config;
#[cfg(feature = "kafka")]
mod ingest_node;
pub mod pipeline;
#[cfg(test)]
mod routes;

pub use app::{Addresses, App, test_receivers};
#[cfg(feature = "kafka")]
pub use compute_node::ComputeNode;
pub use config::{Role, ServeArgs, ServeConfig};
#[cfg(feature = "kafka")]
pub use ingest_node::IngestNode;

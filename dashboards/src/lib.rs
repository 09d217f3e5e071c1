//! Grafana dashboard and provisioning generation, and Prometheus rule export, from the
//! same SLO definitions the engine loads. Nothing is generated yet: the crate holds its
//! place in the workspace so the stages keep the layout of `docs/design.md`.

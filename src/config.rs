//! `slotel serve` configuration: a YAML file whose keys mirror the flags; flags win.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Flags of `slotel serve`. Each can also be set in the `--config` file, under the same
/// name with `_` for `-`.
#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// A YAML configuration file.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// SLO files or folders of them (repeat the flag for several).
    #[arg(long)]
    pub slos: Vec<PathBuf>,
    /// Where slotel keeps its data [default: ./data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// OTLP/gRPC listen address [default: 127.0.0.1:4317].
    #[arg(long)]
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// OTLP/HTTP listen address [default: 127.0.0.1:4318].
    #[arg(long)]
    pub otlp_http_addr: Option<SocketAddr>,
    /// API listen address [default: 127.0.0.1:8080].
    #[arg(long)]
    pub api_addr: Option<SocketAddr>,
    /// Also write the bound addresses as JSON to this file once listening.
    #[arg(long)]
    pub listen_file: Option<PathBuf>,
    /// Batches the ingest queue holds before refusing with a retryable error
    /// [default: 1024].
    #[arg(long)]
    pub queue_capacity: Option<usize>,
    /// Largest OTLP request accepted, in bytes [default: 16777216].
    #[arg(long)]
    pub max_request_bytes: Option<usize>,
}

/// The configuration file. Relative paths in it are relative to the file's folder.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    slos: OneOrMany,
    data_dir: Option<PathBuf>,
    otlp_grpc_addr: Option<SocketAddr>,
    otlp_http_addr: Option<SocketAddr>,
    api_addr: Option<SocketAddr>,
    listen_file: Option<PathBuf>,
    queue_capacity: Option<usize>,
    max_request_bytes: Option<usize>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(PathBuf),
    Many(Vec<PathBuf>),
}

/// The resolved configuration of `slotel serve`.
#[derive(Debug)]
pub struct ServeConfig {
    pub slos: Vec<PathBuf>,
    pub data_dir: PathBuf,
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub listen_file: Option<PathBuf>,
    pub queue_capacity: usize,
    pub max_request_bytes: usize,
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("invalid YAML");
        anyhow::anyhow!("{}{at}: {first}", path.display())
    })
}

impl ServeConfig {
    /// Merges flags over the config file over the defaults.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let (file, base) = match &args.config {
            Some(path) => (
                read_file(path)?,
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
            ),
            None => (FileConfig::default(), PathBuf::new()),
        };
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let slos = if !args.slos.is_empty() {
            args.slos
        } else {
            match file.slos {
                OneOrMany::None => Vec::new(),
                OneOrMany::One(p) => vec![rel(p)],
                OneOrMany::Many(ps) => ps.into_iter().map(rel).collect(),
            }
        };
        if slos.is_empty() {
            anyhow::bail!("no SLO files: pass --slos FILE (or set slos: in the config file)");
        }
        let addr = |s: &str| s.parse::<SocketAddr>().expect("valid default address");
        Ok(Self {
            slos,
            data_dir: args
                .data_dir
                .or(file.data_dir.map(rel))
                .unwrap_or_else(|| PathBuf::from("./data")),
            otlp_grpc_addr: args
                .otlp_grpc_addr
                .or(file.otlp_grpc_addr)
                .unwrap_or_else(|| addr("127.0.0.1:4317")),
            otlp_http_addr: args
                .otlp_http_addr
                .or(file.otlp_http_addr)
                .unwrap_or_else(|| addr("127.0.0.1:4318")),
            api_addr: args
                .api_addr
                .or(file.api_addr)
                .unwrap_or_else(|| addr("127.0.0.1:8080")),
            listen_file: args.listen_file.or(file.listen_file.map(rel)),
            queue_capacity: args.queue_capacity.or(file.queue_capacity).unwrap_or(1024),
            max_request_bytes: args
                .max_request_bytes
                .or(file.max_request_bytes)
                .unwrap_or(16 * 1024 * 1024),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("slotel.yaml");
        std::fs::write(
            &cfg,
            "slos: [slos.yaml]\ndata_dir: d\napi_addr: 127.0.0.1:9000\nqueue_capacity: 7\n",
        )
        .unwrap();
        let c = ServeConfig::resolve(ServeArgs {
            config: Some(cfg.clone()),
            api_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.slos, vec![dir.path().join("slos.yaml")]);
        assert_eq!(c.data_dir, dir.path().join("d"));
        assert_eq!(c.api_addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.otlp_grpc_addr, "127.0.0.1:4317".parse().unwrap());
        assert_eq!(c.queue_capacity, 7);
    }

    #[test]
    fn unknown_keys_are_reported_with_their_position() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("slotel.yaml");
        std::fs::write(&cfg, "slos: a.yaml\napi_adr: 127.0.0.1:1\n").unwrap();
        let err = ServeConfig::resolve(ServeArgs {
            config: Some(cfg.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(&format!("{}:2:1: ", cfg.display())),
            "{err}"
        );
        assert!(err.contains("api_adr"), "{err}");
    }
}

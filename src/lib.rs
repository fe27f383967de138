//! apim-deploy: deploys and operates a distributed WSO2 API Manager 1.9 cluster over SSH.
//!
//! See ARCHITECTURE.md for the map. In brief: `inventory` reads the operator's TOML,
//! `topology` derives every per-node fact once, and the commands in `cli` hand that
//! topology to the engine. Transports, the XML patcher, the lab and the stand-in
//! distribution are crates of their own under `crates/`.

pub mod cli;
pub mod connect;
pub mod deploy;
pub use apim_engine as engine;
pub mod inventory;
pub mod operate;
pub mod topology;
pub mod wso2;

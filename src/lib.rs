//! devenv: daemonless local development environments for Laravel teams.
//!
//! Data flows one way: `dev.toml` → [`config`] (the resolved model) →
//! [`plan`] (what to change) → [`engine`] (the Docker Engine API).

pub mod assets;
pub mod branchdb;
pub mod ca;
pub mod cli;
pub mod clip;
pub mod commands;
pub mod config;
pub mod database;
pub mod dbsafety;
pub mod describe;
pub mod dump;
pub mod engine;
pub mod export;
pub mod graph;
pub mod hooks;
pub mod identity;
pub mod image_ref;
pub mod images;
pub mod import;
pub mod interrupt;
pub mod lifecycle;
pub mod names;
pub mod plan;
pub mod ports;
pub mod probe;
pub mod report;
pub mod router;
pub mod scratch;
pub mod since;
pub mod snapshot;
pub mod testrun;
pub mod timeline;
pub mod trust;
pub mod ui;
pub mod urls;
pub mod watch;
pub mod webui;

#[cfg(test)]
mod architecture;

//! devenv: daemonless local development environments for Laravel teams.

pub mod config;

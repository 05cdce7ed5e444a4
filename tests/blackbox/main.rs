//! The black-box suite: the real `keymint` binary against a private moto and private storage
//! (SQLite or PostgreSQL) per test, one module per feature area. One binary, so the AWS SDK
//! and the harness are linked once, not once per file. Every test builds its own fixtures
//! (`TestEnv::start`, `Moto::start`, `Storage::new`): nothing here may be shared between tests,
//! since all of them now run in one process, in any order and concurrently.
//!
//! Run one area with `cargo test -p keymint-tests --test blackbox creds::`.

mod agent;
mod audit;
mod auth_approle;
mod auth_jwt;
mod auth_kubernetes;
mod authorization;
mod aws_faults;
mod cli;
mod config_cache;
mod config_roles;
mod config_verify;
mod crash;
mod creds;
mod enforcement;
mod fleet;
mod ha;
mod harness;
mod leases;
mod listener;
mod login;
mod login_jwt;
mod logs;
mod metrics;
mod openapi;
mod production;
mod rotation;
mod secrets;
mod server;
mod shutdown;
mod token_roles;
mod tokens;

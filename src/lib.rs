//! Tidings: a self-hosted mailing-list and supporter-update service for
//! small campaign groups.
//!
//! Layout (data flows down, never up; where each flow lives, all the SQL and
//! the invariants: `ARCHITECTURE.md` at the repository root):
//! - [`cli`] parses the command line and runs one command.
//! - [`app`] wires everything together: startup, workers, graceful shutdown.
//! - [`web`] holds thin axum handlers: parse → service → render.
//! - [`workers`] holds long-running loops that claim work from the store.
//! - [`services`] holds the flows (subscribe, confirm, unsubscribe, …).
//! - [`mail`] composes messages and sends them (SMTP or an outbox folder).
//! - [`metrics`] counts what happens, for Prometheus (`/metrics`).
//! - [`domain`] holds pure types that parse untrusted input.
//! - [`store`] holds all SQL, for SQLite and PostgreSQL.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod mail;
pub mod metrics;
pub mod services;
pub mod store;
pub mod web;
pub mod workers;

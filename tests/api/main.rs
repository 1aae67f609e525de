//! Integration tests: one binary (one link step), modules by area. Each
//! test runs against SQLite and against PostgreSQL (`both_backends!`).

mod support;

mod admin;
mod admin_updates;
mod api;
mod archive;
mod bad_input;
mod browser;
mod delivery;
mod dkim;
mod imports;
mod journey;
mod links;
mod outbox;
mod privacy_ops;
mod process;
mod schedules;
mod smtp_tls;
mod store;

//! Integration tests: one binary (one link step), modules by area. Each
//! test runs against SQLite and against PostgreSQL (`both_backends!`).

mod support;

mod admin;
mod admin_updates;
mod api;
mod archive;
mod attacks;
mod bad_input;
mod bounces;
mod browser;
mod checklist;
mod consent_evidence;
mod delivery;
mod dkim;
mod embedding;
mod error_pages;
mod faults;
mod forged_reports;
mod group_commit;
mod honoured;
mod identity;
mod imports;
mod journey;
mod limits;
mod links;
mod observability;
mod openapi;
mod outbox;
mod privacy_ops;
mod process;
mod properties;
mod records;
mod schedules;
mod send_guard;
mod sender_auth;
mod signup_abuse;
mod smtp_tls;
mod store;

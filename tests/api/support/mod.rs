pub mod app;
pub mod browser;
pub mod dns;
pub mod imap;
pub mod pop3;
pub mod skip;
pub mod smtp;

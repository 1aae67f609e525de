pub mod app;
pub mod browser;
pub mod pop3;
pub mod smtp;

pub mod app;
pub mod browser;
pub mod smtp;

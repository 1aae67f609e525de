pub mod smtp;
pub mod app;

pub mod app;
pub mod desktop;
#[path = "../../crates/rekeyd/tests/common/server.rs"]
pub mod server;

pub mod desktop;

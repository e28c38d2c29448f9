//! The `rekey` desktop app. Everything lives in the library so tests can drive it.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    rekey_core::hasher::return_hash_memory_after_use();
    rekey_desktop::run()
}

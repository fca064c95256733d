//! Fuzz target `idx_gz`: see `checks.rs` for what one input is checked for.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::idx_gz(data));

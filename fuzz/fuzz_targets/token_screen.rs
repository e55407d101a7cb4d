#![no_main]

// Each target uses one of the shared checks.
#[allow(dead_code)]
#[path = "../invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::token_screen(data));

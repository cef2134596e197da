//! `ops`: an arbitrary program of gets, writes, appends (growth), truncations,
//! releases, thread exits and trims on several threads, checked against a
//! model after every step. The harness is `magpool_fuzz::ops`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use magpool_fuzz::ops::{run, Op};

fuzz_target!(|ops: Vec<Op>| {
    if ops.len() <= 256 {
        run(&ops);
    }
});

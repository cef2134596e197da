//! Design notes: how magpool works inside, and why it is correct.
#![doc = include_str!("../IMPLEMENTATION.md")]

//! Test support shared by every crate's tests (feature `testing`).

pub mod emulator;

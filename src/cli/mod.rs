//! Subcommands of the `wgmlp` binary.

pub mod bench;
pub mod common;
pub mod eval;
pub mod info;
pub mod json;
pub mod plot;
pub mod train;

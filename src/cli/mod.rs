//! Subcommands of the `wgmlp` binary.

pub mod info;
pub mod plot;

//! For runtime authors: `mlhost init` (a new project), `mlhost build` (a checked component).

pub mod builder;
pub mod init;

/// The languages a runtime can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// Rust, with the `mlhost-guest` SDK (cargo, target wasm32-wasip2).
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with jco componentize.
    Js,
}

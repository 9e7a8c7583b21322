//! For runtime authors: `mlhost init` (a new project), `mlhost build` (a checked component).

pub(crate) mod builder;
pub(crate) mod init;

/// The languages a runtime can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Language {
    /// Rust, with the `mlhost-guest` SDK (cargo, target wasm32-wasip2).
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with jco componentize.
    Js,
}

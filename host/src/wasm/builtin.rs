//! The runtimes compiled into the mlhost binary (built from `runtimes/` by the build script).

/// The built-in runtimes: the name `implementation` gives, and the component's bytes.
pub const BUILT_IN_RUNTIMES: &[(&str, &[u8])] = &[(
    "linear",
    include_bytes!(concat!(env!("OUT_DIR"), "/linear.wasm")),
)];

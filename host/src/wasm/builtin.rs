//! The runtimes compiled into the mlhost binary (built from `runtimes/` by the build script).

/// The built-in runtimes: the name `implementation` gives, and the component's bytes.
pub const BUILT_IN_RUNTIMES: &[(&str, &[u8])] = &[(
    "linear",
    include_bytes!(concat!(env!("OUT_DIR"), "/linear.wasm")),
)];

/// The component of the built-in runtime called `name`.
pub fn built_in_runtime(name: &str) -> Option<&'static [u8]> {
    BUILT_IN_RUNTIMES
        .iter()
        .find(|(runtime, _)| *runtime == name)
        .map(|(_, bytes)| *bytes)
}

//! Checks that a component implements mlhost's WIT world, naming what is missing or different.
//!
//! The check reads the component's own type information (`wit-parser` decodes it without
//! compiling anything), so it is instant even for a 40 MB Python component. It compares against
//! the WIT package compiled into this binary: every export of the world must be there with the
//! same types, and every import must be one the server provides (mlhost's `host` interface and
//! WASI 0.2's cli, clocks, filesystem, io, random and sockets). The server's own check when it
//! loads a component runs this check first (so that a wrong component is refused in these words
//! before a long compile), then wasmtime's own type check, the last word; `mlhost build
//! --precompile` runs both.

mod compare;
mod exports;
mod imports;
mod names;
mod render;

use compare::Check;
use wit_parser::decoding::DecodedWasm;
use wit_parser::{Resolve, WorldId};

/// The WIT package of the runtime world, as this binary was built with it.
pub(crate) const RUNTIME_WIT: &str = include_str!("../../../../wit/runtime.wit");

/// What a component that passed the check implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorldReport {
    /// The version of `mlhost:runtime` the component was built against.
    pub version: String,
    /// The interfaces the component imports, e.g. `wasi:filesystem/types@0.2.3`.
    pub imports: Vec<String>,
}

/// Checks `bytes` against the runtime world; the error lists every problem, one per line.
pub(crate) fn check_component(bytes: &[u8]) -> Result<WorldReport, String> {
    if !is_component(bytes) {
        return Err(if bytes.starts_with(b"\0asm") {
            "this is a core WebAssembly module, not a component: build for the wasm32-wasip2 \
             target (or run it through a componentizer)"
                .to_string()
        } else {
            "this is not a WebAssembly file".to_string()
        });
    }
    let (found, found_world) = match wit_parser::decoding::decode(bytes) {
        Ok(DecodedWasm::Component(resolve, world)) => (resolve, world),
        Ok(DecodedWasm::WitPackage(..)) => {
            return Err("this is a WIT package encoded as wasm, not a runtime component".into());
        }
        Err(error) => return Err(format!("cannot read the component's types: {error:#}")),
    };
    let (wanted, wanted_world) = runtime_world();
    let check = Check::new(&wanted, &found);
    let mut problems = Vec::new();
    let version = check.exports(wanted_world, found_world, &mut problems);
    let imports = check.imports(wanted_world, found_world, &mut problems);
    match version {
        Some(version) if problems.is_empty() => Ok(WorldReport { version, imports }),
        _ => Err(problems.join("\n")),
    }
}

/// The version of the `mlhost:runtime` package this binary serves, e.g. `0.1.2`.
pub(crate) fn runtime_version() -> String {
    let (resolve, world) = runtime_world();
    let package = resolve.worlds[world]
        .package
        .expect("the world is in a package");
    resolve.packages[package]
        .name
        .version
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// The runtime world parsed from [`RUNTIME_WIT`].
fn runtime_world() -> (Resolve, WorldId) {
    let mut resolve = Resolve::default();
    let package = resolve
        .push_str("runtime.wit", RUNTIME_WIT)
        .expect("the built-in WIT parses");
    let world = resolve
        .select_world(&[package], Some("runtime"))
        .expect("the built-in WIT has world `runtime`");
    (resolve, world)
}

/// Whether `bytes` start with the header of a component (layer 1), not of a core module.
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[6..8] == [1, 0]
}

#[cfg(test)]
mod tests {
    use super::names::compatible;
    use super::*;

    #[test]
    fn the_built_in_runtimes_implement_the_world() {
        for (name, bytes) in super::super::BUILT_IN_RUNTIMES {
            let report = check_component(bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(report.version, "0.1.2", "{name}");
            assert!(
                report
                    .imports
                    .iter()
                    .any(|i| i.starts_with("mlhost:runtime/host@")),
                "{name}: {:?}",
                report.imports
            );
        }
    }

    #[test]
    fn versions_match_as_wasmtime_matches_them() {
        let v = |text: &str| semver::Version::parse(text).unwrap();
        assert!(compatible(&v("0.1.0"), &v("0.1.9")));
        assert!(!compatible(&v("0.1.0"), &v("0.2.0")));
        assert!(compatible(&v("1.0.0"), &v("1.4.0")));
        assert!(!compatible(&v("1.0.0"), &v("2.0.0")));
        assert!(!compatible(&v("0.0.1"), &v("0.0.2")));
        assert!(compatible(&v("0.0.1"), &v("0.0.1")));
        assert!(!compatible(&v("0.2.0-rc-1"), &v("0.2.0")));
        assert_eq!(runtime_version(), "0.1.2");
    }

    #[test]
    fn a_core_module_or_other_bytes_are_refused_in_words() {
        let module = b"\0asm\x01\0\0\0";
        assert!(
            check_component(module)
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(
            check_component(b"hello")
                .unwrap_err()
                .contains("not a WebAssembly file")
        );
    }
}

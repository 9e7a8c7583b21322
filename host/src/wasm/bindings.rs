//! The host side of the `mlhost:runtime` WIT world, generated once for the whole crate.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "mlhost:runtime/runtime@0.1.1",
});

pub use self::mlhost::runtime::types;

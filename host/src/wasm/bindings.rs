//! The host side of the `mlhost:runtime` WIT world, generated once for the whole crate.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "mlhost:runtime/runtime@0.1.2",
    imports: {
        // Waiting for room in a full stream may reach the call's deadline, which traps.
        "mlhost:runtime/host.send-response": trappable,
    },
    with: {
        // A guest's handle on a graph loaded in the native ONNX backend.
        "mlhost:runtime/onnx.session": crate::native::OnnxSession,
    },
});

pub(super) use self::mlhost::runtime::types;

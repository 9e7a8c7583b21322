//! Generates the gRPC service and messages from `grpc_service.proto` with a pure-Rust protobuf
//! compiler (no `protoc` on the machine).
//!
//! A crate of its own so that the host's build script, which builds the runtimes to wasm, needs
//! no build dependency and starts at once, beside the rest of the build.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let proto = dir.join("grpc_service.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let descriptors = protox::compile([&proto], [&dir])
        .unwrap_or_else(|error| panic!("cannot compile grpc_service.proto: {error}"));
    tonic_prost_build::configure()
        .compile_fds(descriptors)
        .unwrap_or_else(|error| panic!("cannot generate the gRPC code: {error}"));
}

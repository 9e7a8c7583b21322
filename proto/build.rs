//! Generates the gRPC services and messages from `grpc_service.proto` (the Open Inference
//! Protocol) and `model-runtime.proto` (ModelMesh's `mmesh.ModelRuntime`, as kserve/modelmesh
//! defines it) with a pure-Rust protobuf compiler (no `protoc` on the machine), and writes the
//! encoded file descriptor set that server reflection answers with.
//!
//! A crate of its own so that the host's build script, which builds the runtimes to wasm, needs
//! no build dependency and starts at once, beside the rest of the build.

use prost::Message;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let proto = dir.join("grpc_service.proto");
    let mesh = dir.join("model-runtime.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    println!("cargo:rerun-if-changed={}", mesh.display());
    let descriptors = protox::compile([&proto, &mesh], [&dir])
        .unwrap_or_else(|error| panic!("cannot compile the .proto files: {error}"));
    // Reflection on the inference port describes `inference` only: `mmesh.ModelRuntime` is
    // served on a port of its own.
    let mut inference = descriptors.clone();
    inference.file.retain(|file| file.package() == "inference");
    let descriptor_path = out.join("inference_descriptor.bin");
    std::fs::write(&descriptor_path, inference.encode_to_vec())
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", descriptor_path.display()));
    tonic_prost_build::configure()
        // RPCs the server does not implement answer UNIMPLEMENTED.
        .generate_default_stubs(true)
        .compile_fds(descriptors)
        .unwrap_or_else(|error| panic!("cannot generate the gRPC code: {error}"));
}

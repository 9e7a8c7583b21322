//! Builds the built-in runtimes (`runtimes/*`) to wasm32-wasip2 components, which the host
//! embeds with `include_bytes!`.
//!
//! A nested cargo builds them with its own target dir (as wasmtime's test-programs artifacts
//! crate does), so it never contends with the outer build's lock. Guests get `+simd128`.
//!
//! Profiles: dev and test builds of the host build the guests in the `guest` profile (thin LTO)
//! with the test-only guests beside them; release and dist builds use `guest-dist` (whole-program
//! LTO) and build no test guest. `MLHOST_GUEST_PROFILE` overrides the choice (scripts/test builds
//! the container image with the guests its tests already built).
//!
//! Toolchains: the rustup `wasm32-wasip2` target (`rustup target add wasm32-wasip2`), or, where
//! rustup cannot fetch it, Debian's Rust with `rust-web-src` and the backports `wasi-libc`
//! (see `scripts/setup`), used through build-std. `MLHOST_GUEST_TOOLCHAIN=debian` forces the
//! latter.

use sha2::Digest;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (runtime name, cargo package, artifact file name)
const RUNTIMES: &[(&str, &str, &str)] = &[
    (
        "linear",
        "mlhost-runtime-linear",
        "mlhost_runtime_linear.wasm",
    ),
    ("trees", "mlhost-runtime-trees", "mlhost_runtime_trees.wasm"),
    ("onnx", "mlhost-runtime-onnx", "mlhost_runtime_onnx.wasm"),
];

/// `scripts/build-guests` runs the same build as a dev or test build of the host does (CI starts
/// it early): keep its packages and flags in step with these and [`set_guest_environment`].
///
/// Test-only guests (hostile runtimes): built alongside in the `guest` profile, never embedded;
/// the tests load them from `<target>/mlhost-guests/wasm32-wasip2/guest/`.
const TEST_GUESTS: &[&str] = &[
    "mlhost-test-hostile",
    "mlhost-test-onnx-custom",
    "mlhost-test-pipeline-pre",
    "mlhost-test-pipeline-post",
    "mlhost-test-wit-0-1-0",
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    for watched in ["wit", "guest-sdk", "runtimes", "tests/guests", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-env-changed=MLHOST_GUEST_TOOLCHAIN");
    println!("cargo:rerun-if-env-changed=MLHOST_GUEST_PROFILE");

    let target_dir = guest_target_dir(&out_dir);
    let profile = guest_profile(&out_dir);
    let debian = use_debian_toolchain();
    let cargo = if debian {
        PathBuf::from("/usr/bin/cargo")
    } else {
        PathBuf::from(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
    };

    let mut command = Command::new(&cargo);
    command
        .current_dir(&workspace)
        .args([
            "build",
            "--profile",
            &profile,
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    let test_guests: &[&str] = if profile == "guest" { TEST_GUESTS } else { &[] };
    for package in RUNTIMES
        .iter()
        .map(|(_, package, _)| package)
        .chain(test_guests)
    {
        command.args(["--package", package]);
    }
    set_guest_environment(&mut command, debian);

    let status = command.status().unwrap_or_else(|error| {
        panic!(
            "cannot run {} to build the runtimes: {error}",
            cargo.display()
        )
    });
    if !status.success() {
        panic!(
            "building the built-in runtimes for {TARGET} failed. Is the target installed? \
             Run `scripts/setup` (or `rustup target add {TARGET}`)."
        );
    }
    for (name, _, artifact) in RUNTIMES {
        let built = target_dir.join(TARGET).join(&profile).join(artifact);
        let bytes = std::fs::read(&built)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", built.display()));
        std::fs::write(out_dir.join(format!("{name}.wasm")), &bytes)
            .unwrap_or_else(|error| panic!("cannot copy {}: {error}", built.display()));
        // Its digest, so that the server keys its compilation cache without reading the bytes.
        std::fs::write(
            out_dir.join(format!("{name}.wasm.sha256")),
            sha2::Sha256::digest(&bytes),
        )
        .unwrap_or_else(|error| panic!("cannot write {name}'s digest: {error}"));
    }
}

/// The nested cargo's environment: the outer build's flags are for the host; the guests get
/// their own (`+simd128`, and Debian's toolchain settings when it builds them).
fn set_guest_environment(command: &mut Command, debian: bool) {
    for variable in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(variable);
    }
    let mut rustflags = vec!["-Ctarget-feature=+simd128".to_string()];
    if debian {
        command
            .env("RUSTC", "/usr/bin/rustc")
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["-Zbuild-std=std,panic_abort"]);
        rustflags.push("-Clink-self-contained=no".into());
        rustflags.push("-Clink-arg=-L/usr/lib/wasm32-wasip2".into());
    } else {
        command.env_remove("RUSTC");
    }
    command.env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"));
}

/// The cargo profile to build the guests in: `MLHOST_GUEST_PROFILE`, else `guest-dist` for a
/// release or dist build of the host and `guest` for the others.
fn guest_profile(out_dir: &Path) -> String {
    if let Ok(profile) = env::var("MLHOST_GUEST_PROFILE")
        && !profile.is_empty()
    {
        return profile;
    }
    // OUT_DIR is <target>[/<triple>]/<profile>/build/<pkg>-<hash>/out.
    let host_profile = out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "build"))
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .unwrap_or("debug");
    match host_profile {
        "release" | "dist" => "guest-dist".to_string(),
        _ => "guest".to_string(),
    }
}

/// `<target>/mlhost-guests`, shared by the debug and release builds of the host.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    // OUT_DIR is <target>[/<triple>]/<profile>/build/<pkg>-<hash>/out. The guests go in
    // <target>/mlhost-guests whatever the host's target and profile, so that a cross build of
    // the host (the static musl binary, a Windows check) reuses the guests already built.
    let above_profile = out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent);
    let target_triple = env::var("TARGET").unwrap_or_default();
    match above_profile {
        Some(dir)
            if dir
                .file_name()
                .is_some_and(|name| name == target_triple.as_str()) =>
        {
            dir.parent().map_or_else(
                || dir.join("mlhost-guests"),
                |target| target.join("mlhost-guests"),
            )
        }
        Some(dir) => dir.join("mlhost-guests"),
        None => out_dir.join("mlhost-guests"),
    }
}

/// Whether to build the guests with Debian's Rust: when asked to, or when rustup's
/// wasm32-wasip2 standard library is absent and Debian's toolchain is present.
fn use_debian_toolchain() -> bool {
    match env::var("MLHOST_GUEST_TOOLCHAIN").as_deref() {
        Ok("debian") => return true,
        Ok("rustup") => return false,
        _ => {}
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustup_target = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
        .is_some_and(|dir| dir.is_dir());
    !rustup_target
        && Path::new("/usr/lib/wasm32-wasip2").is_dir()
        && Path::new("/usr/bin/cargo").is_file()
}

//! For runtime authors: `mlhost init` → `mlhost build` → `mlhost serve` → `mlhost infer` for a
//! Rust runtime, `build --precompile` filling the compile cache `serve` reads, and `build`
//! refusing a component that implements the wrong world, naming what is missing.
//!
//! The Python and JavaScript runtimes are tested the same way in
//! `tests/python/test_runtime_languages.py` (they need componentize-py and npm).

use crate::client::infer;
use crate::support::Server;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `mlhost SUBCOMMAND ARGS`, with the guest builds of every test sharing one target folder
/// (the SDK and wit-bindgen compile once).
fn mlhost(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlhost"));
    command
        .args(args)
        .env("CARGO_TARGET_DIR", shared_guest_target());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run mlhost")
}

fn shared_guest_target() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("authoring-guests")
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn a_new_rust_runtime_builds_serves_and_answers() {
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("scale");
    let created = succeeded(&mlhost(
        &[
            "init",
            "scale",
            "--lang",
            "rust",
            "--dir",
            project.to_str().unwrap(),
        ],
        &[],
    ));
    assert!(created.contains("mlhost build"), "{created}");
    // The model's own tests run natively with plain cargo.
    let native = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["test", "--quiet", "--manifest-path"])
        .arg(project.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", shared_guest_target())
        .output()
        .unwrap();
    assert!(
        native.status.success(),
        "the template's tests fail: {}",
        String::from_utf8_lossy(&native.stderr)
    );
    // The factor comes from model-settings.json (the template's 2 is also the default).
    let settings_file = project.join("model-settings.json");
    let settings = std::fs::read_to_string(&settings_file).unwrap();
    std::fs::write(
        &settings_file,
        settings.replace("\"factor\": 2", "\"factor\": 3"),
    )
    .unwrap();
    let cache = root.path().join("compiled");
    let built = succeeded(&mlhost(
        &["build", project.to_str().unwrap(), "--precompile"],
        &[("MLHOST_COMPILATION_CACHE_DIR", &cache)],
    ));
    assert!(
        built.contains("build/scale.wasm")
            && built.contains("implements mlhost:runtime/runtime@0.1.2"),
        "{built}"
    );
    assert!(built.contains("KiB"), "{built}");
    assert!(built.contains("precompiled for this machine"), "{built}");

    let server = Server::start_with(
        &project,
        &[],
        &[("MLHOST_COMPILATION_CACHE_DIR", cache.to_str().unwrap())],
    );
    let logs = server.logs().join("\n");
    assert!(
        logs.contains("loaded compiled component from the cache"),
        "serve compiled again: {logs}"
    );
    let request = project.join("request.json");
    let printed = succeeded(&infer(&[
        "scale",
        "-u",
        &server.address.to_string(),
        "-i",
        request.to_str().unwrap(),
    ]));
    assert!(
        printed.contains("y FP64 [2, 2] = [[3.0,6.0],[9.0,12.0]]"),
        "{printed}"
    );

    // A request without `x` is the client's mistake, in the runtime's words.
    let missing = infer(&[
        "scale",
        "-u",
        &server.address.to_string(),
        "--tensor",
        "z=1",
    ]);
    assert!(!missing.status.success());
    let message = String::from_utf8_lossy(&missing.stderr);
    assert!(
        message.contains("400") && message.contains("x"),
        "{message}"
    );
    let strings = infer(&[
        "scale",
        "-u",
        &server.address.to_string(),
        "--tensor",
        "x:BYTES=a",
    ]);
    let message = String::from_utf8_lossy(&strings.stderr);
    assert!(
        message.contains("400") && message.contains("FP64 or FP32"),
        "{message}"
    );
}

/// A runtime written against another version of the world: its model has no `predict`, and
/// `load` takes a string.
const WRONG_WORLD: &str = r#"
wit_bindgen::generate!({
    inline: "
        package mlhost:runtime@0.1.1;
        interface model {
            resource model {
                load: static func(settings: string) -> model;
                metadata: func();
            }
        }
        world runtime { export model; }
    ",
});

struct Runtime;
struct Stale;

impl exports::mlhost::runtime::model::Guest for Runtime {
    type Model = Stale;
}

impl exports::mlhost::runtime::model::GuestModel for Stale {
    fn load(_settings: String) -> exports::mlhost::runtime::model::Model {
        exports::mlhost::runtime::model::Model::new(Stale)
    }
    fn metadata(&self) {}
}

export!(Runtime);
"#;

#[test]
fn build_names_the_missing_and_mismatched_exports_of_a_wrong_world() {
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("stale");
    succeeded(&mlhost(
        &["init", "stale", "--dir", project.to_str().unwrap()],
        &[],
    ));
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    let manifest = manifest.replace(
        "[dependencies]\n",
        "[dependencies]\nwit-bindgen = { version = \"0.46\", default-features = false, features = [\"macros\", \"realloc\"] }\n",
    );
    std::fs::write(project.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(project.join("src/lib.rs"), WRONG_WORLD).unwrap();

    let output = mlhost(&["build", project.to_str().unwrap()], &[]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("does not implement mlhost's runtime world"),
        "{message}"
    );
    assert!(
        message.contains("missing export")
            && message.contains("method `predict` of resource `model`"),
        "{message}"
    );
    assert!(
        message.contains("static function `load` of resource `model`")
            && message.contains("func(settings: string) -> model")
            && message.contains("func(settings: model-settings) -> result<model, error>"),
        "{message}"
    );
}

#[test]
fn build_says_what_a_folder_that_is_no_project_lacks() {
    let root = tempfile::tempdir().unwrap();
    let output = mlhost(&["build", root.path().to_str().unwrap()], &[]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("mlhost init"), "{message}");
}

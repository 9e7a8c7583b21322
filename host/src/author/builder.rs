//! `mlhost build`: builds a runtime project to a component, checks it implements the runtime
//! world, and optionally precompiles it into the server's compile cache.

use super::Language;
use crate::config::load_settings;
use crate::wasm::world::{WorldReport, check_component, runtime_version};
use crate::wasm::{CompileError, ComponentSource, EngineOptions, WasmEngine};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Rust target runtimes are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

/// The componentize-py release `mlhost init --lang python` projects are built with.
pub(crate) const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// What `mlhost build` is asked to do.
#[derive(Debug, Clone)]
pub(crate) struct BuildOptions {
    /// The project folder.
    pub dir: PathBuf,
    /// Also compile the component for this machine into the compile cache.
    pub precompile: bool,
}

/// What a successful build made.
#[derive(Debug)]
pub(crate) struct BuildOutcome {
    /// The component file.
    pub component: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// What the world check found.
    pub report: WorldReport,
    /// How long compiling for this machine took, when asked to.
    pub precompiled: Option<Duration>,
}

/// Builds the project in `options.dir`.
pub(crate) fn build(options: &BuildOptions) -> anyhow::Result<BuildOutcome> {
    let dir = &options.dir;
    let language = detect_language(dir)?;
    let output = output_path(dir)?;
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    match language {
        Language::Rust => build_rust(dir, &output)?,
        Language::Python => build_python(dir, &output)?,
        Language::Js => build_js(dir, &output)?,
    }
    let bytes =
        std::fs::read(&output).with_context(|| format!("cannot read {}", output.display()))?;
    let report = check_component(&bytes).map_err(|problems| {
        let problems: Vec<String> = problems.lines().map(|line| format!("  - {line}")).collect();
        anyhow::anyhow!(
            "{} does not implement mlhost's runtime world (mlhost:runtime/runtime@{}):\n{}",
            output.display(),
            runtime_version(),
            problems.join("\n")
        )
    })?;
    let precompiled = if options.precompile {
        Some(precompile(dir, &output)?)
    } else {
        None
    };
    Ok(BuildOutcome {
        size: bytes.len() as u64,
        component: output,
        report,
        precompiled,
    })
}

/// Which language the project in `dir` is written in, from the files that are there.
pub(crate) fn detect_language(dir: &Path) -> anyhow::Result<Language> {
    if !dir.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    if dir.join("Cargo.toml").is_file() {
        Ok(Language::Rust)
    } else if dir.join("package.json").is_file() {
        Ok(Language::Js)
    } else if dir.join("app.py").is_file() {
        Ok(Language::Python)
    } else {
        bail!(
            "{} holds no Cargo.toml, package.json or app.py: not a runtime project \
             (`mlhost init NAME` makes one)",
            dir.display()
        )
    }
}

/// Where the component goes: the `.wasm` file model-settings.json's `implementation` names,
/// else `build/NAME.wasm` (NAME: the model's name, else the folder's).
fn output_path(dir: &Path) -> anyhow::Result<PathBuf> {
    let settings_file = dir.join("model-settings.json");
    let settings: serde_json::Value = match std::fs::read(&settings_file) {
        Ok(text) => serde_json::from_slice(&text)
            .with_context(|| format!("{} is not valid JSON", settings_file.display()))?,
        Err(_) => serde_json::Value::Null,
    };
    if let Some(implementation) = settings["implementation"].as_str()
        && implementation.ends_with(".wasm")
    {
        return Ok(dir.join(implementation));
    }
    let name = match settings["name"].as_str() {
        Some(name) => name.to_string(),
        None => std::fs::canonicalize(dir)?
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "runtime".into()),
    };
    Ok(dir.join("build").join(format!("{name}.wasm")))
}

/// `cargo build --release --target wasm32-wasip2`, then copies the library's `.wasm`.
fn build_rust(dir: &Path, output: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let installed = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
        .is_some_and(|dir| dir.is_dir());
    if !installed {
        bail!(
            "Rust's {WASM_TARGET} target is not installed: run `rustup target add {WASM_TARGET}`"
        );
    }
    let manifest = std::fs::canonicalize(dir.join("Cargo.toml"))?;
    let mut command = Command::new(&cargo);
    command
        .current_dir(dir)
        .args(["build", "--release", "--target", WASM_TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Flags meant for the machine's own target do not apply to the guest.
    for variable in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"] {
        command.env_remove(variable);
    }
    let result = command
        .output()
        .with_context(|| format!("cannot run {}", cargo.to_string_lossy()))?;
    if !result.status.success() {
        bail!("cargo build failed (its errors are above)");
    }
    let artifact = String::from_utf8_lossy(&result.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| {
            message["manifest_path"]
                .as_str()
                .and_then(|path| std::fs::canonicalize(path).ok())
                .is_some_and(|path| path == manifest)
        })
        .flat_map(|message| {
            message["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|name| name.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .find(|path| path.extension().is_some_and(|ext| ext == "wasm"));
    let Some(artifact) = artifact else {
        bail!("cargo built no .wasm library: Cargo.toml needs `[lib] crate-type = [\"cdylib\"]`");
    };
    std::fs::copy(&artifact, output)
        .with_context(|| format!("cannot copy {} to {}", artifact.display(), output.display()))?;
    Ok(())
}

/// `componentize-py` on `app.py` against `wit/`.
fn build_python(dir: &Path, output: &Path) -> anyhow::Result<()> {
    let mut command = Command::new("componentize-py");
    command
        .current_dir(dir)
        .args([
            "--wit-path",
            "wit",
            "--world",
            "runtime",
            "componentize",
            "app",
            "-o",
        ])
        .arg(absolute(output)?);
    run(
        command,
        "componentize-py",
        &format!("install it with `pip install {COMPONENTIZE_PY}`"),
    )
}

/// `npm install` (the first time), then jco componentize through the project's build script.
fn build_js(dir: &Path, output: &Path) -> anyhow::Result<()> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if !dir.join("node_modules").is_dir() {
        let mut install = Command::new(npm);
        install.current_dir(dir).arg("install");
        run(install, "npm install", "install Node.js and npm")?;
    }
    let mut command = Command::new(npm);
    command
        .current_dir(dir)
        .args(["run", "--silent", "build", "--"])
        .arg(absolute(output)?);
    run(command, "npm run build", "install Node.js and npm")
}

/// Runs a build tool with its output shown; says how to get it when it is missing.
fn run(mut command: Command, what: &str, how_to_get_it: &str) -> anyhow::Result<()> {
    let status = match command.status() {
        Ok(status) => status,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            bail!("{what} was not found: {how_to_get_it}")
        }
        Err(error) => bail!("cannot run {what}: {error}"),
    };
    if !status.success() {
        bail!("{what} failed (its errors are above)");
    }
    Ok(())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// Compiles the component as `mlhost serve` would (same settings, same engine), which stores
/// it in the compile cache and runs the server's own type check.
fn precompile(dir: &Path, component: &Path) -> anyhow::Result<Duration> {
    let settings = load_settings(Some(&dir.join("settings.json")), |name| {
        std::env::var(name).ok()
    })?;
    let Some(cache_dir) = settings.compilation_cache() else {
        bail!(
            "the compile cache is off (compilation_cache_dir is \"\"): nothing to precompile into"
        );
    };
    let engine = WasmEngine::new(&EngineOptions {
        // The allocation strategy does not change the compiled code (serve's pool hits the
        // entry: tested), so no instance slots are reserved here.
        instance_pool_size: 0,
        max_memory_bytes: settings.memory_limit_mb.saturating_mul(1024 * 1024),
        cache_dir: Some(cache_dir.clone()),
    })
    .map_err(|error| anyhow::anyhow!("cannot create the WebAssembly engine: {error:#}"))?;
    if !engine.caches_to_disk() {
        bail!(
            "the compile cache {} cannot be used (the warning above says why)",
            cache_dir.display()
        );
    }
    let started = Instant::now();
    engine
        .component(&ComponentSource::File(component.to_path_buf()))
        .map_err(|error| compile_failure(&error))?;
    Ok(started.elapsed())
}

/// A compile error as the command's error. Its text already holds its causes, so it goes as that
/// text alone: `main` prints an error with its chain (`{:#}`), which would repeat each cause.
fn compile_failure(error: &CompileError) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compile_error_prints_its_cause_once() {
        let error = CompileError::Read {
            component: "m.wasm".into(),
            source: std::io::Error::other("disk on fire"),
        };
        // As `main` prints it.
        let printed = format!("{:#}", compile_failure(&error));
        assert_eq!(printed, "cannot compile m.wasm: disk on fire");
    }

    #[test]
    fn the_language_comes_from_the_project_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(detect_language(dir.path()).is_err());
        std::fs::write(dir.path().join("app.py"), "").unwrap();
        assert_eq!(detect_language(dir.path()).unwrap(), Language::Python);
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        assert_eq!(detect_language(dir.path()).unwrap(), Language::Js);
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(detect_language(dir.path()).unwrap(), Language::Rust);
    }

    #[test]
    fn the_component_goes_where_the_settings_point() {
        let dir = tempfile::tempdir().unwrap();
        let settings = dir.path().join("model-settings.json");
        std::fs::write(&settings, r#"{"name": "m"}"#).unwrap();
        assert_eq!(
            output_path(dir.path()).unwrap(),
            dir.path().join("build/m.wasm")
        );
        std::fs::write(&settings, r#"{"implementation": "out/x.wasm"}"#).unwrap();
        assert_eq!(
            output_path(dir.path()).unwrap(),
            dir.path().join("out/x.wasm")
        );
    }
}

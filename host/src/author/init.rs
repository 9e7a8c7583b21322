//! `mlhost init`: writes a new runtime project that builds and serves on first try.

use super::Language;
use crate::wasm::world::RUNTIME_WIT;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// A file of a project template: its path in the project and its text, with `{{...}}`
/// placeholders.
type TemplateFile = (&'static str, &'static str);

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $path))
    };
}

/// Files every project has.
const COMMON: &[TemplateFile] = &[
    (
        "model-settings.json",
        template!("common/model-settings.json.tmpl"),
    ),
    ("request.json", template!("common/request.json.tmpl")),
    ("README.md", template!("common/README.md.tmpl")),
];

const RUST: &[TemplateFile] = &[
    ("Cargo.toml", template!("rust/Cargo.toml.tmpl")),
    ("src/lib.rs", template!("rust/src/lib.rs.tmpl")),
    (".gitignore", template!("rust/gitignore.tmpl")),
];

const PYTHON: &[TemplateFile] = &[
    ("app.py", template!("python/app.py.tmpl")),
    ("model.py", template!("python/model.py.tmpl")),
    (
        "requirements.txt",
        template!("python/requirements.txt.tmpl"),
    ),
    (".gitignore", template!("python/gitignore.tmpl")),
];

const JS: &[TemplateFile] = &[
    ("package.json", template!("js/package.json.tmpl")),
    ("model.js", template!("js/model.js.tmpl")),
    (".gitignore", template!("js/gitignore.tmpl")),
];

/// Where the guest SDK's sources were when this binary was built: new Rust projects depend on
/// them by path while the SDK is not on crates.io.
const SDK_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// What `mlhost init` is asked to make.
#[derive(Debug, Clone)]
pub(crate) struct InitOptions {
    /// The project's (and the model's) name.
    pub name: String,
    pub language: Language,
    /// The project folder; `./NAME` when not given.
    pub dir: Option<PathBuf>,
    /// The guest SDK to depend on (Rust): a folder, else the SDK this binary was built with.
    pub sdk: Option<PathBuf>,
}

/// Writes the project; returns its folder.
pub(crate) fn init(options: &InitOptions) -> anyhow::Result<PathBuf> {
    check_name(&options.name)?;
    let dir = options
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&options.name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} already exists and is not empty: choose another name or --dir",
            dir.display()
        );
    }
    let sdk_dependency = match options.language {
        Language::Rust => sdk_dependency(options.sdk.as_deref())?,
        _ => String::new(),
    };
    let (language, source, prerequisites) = match options.language {
        Language::Rust => (
            "Rust",
            "src/lib.rs",
            "Needs Rust with the wasm32-wasip2 target: `rustup target add wasm32-wasip2`. \
             `cargo test` runs the model's tests natively.",
        ),
        Language::Python => (
            "Python",
            "app.py",
            "Needs Python 3 and componentize-py on the PATH: \
             `python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && \
             . .venv/bin/activate`. The runtime runs CPython's standard library inside the \
             component (no numpy, no native extensions). `model.py` tells componentize-py \
             where the exported `Model` class is.",
        ),
        Language::Js => (
            "JavaScript",
            "model.js",
            "Needs Node.js 20+ and npm: `mlhost build` runs `npm install` the first time. \
             `npm run types` writes the WIT's TypeScript declarations to `types/`. The runtime \
             is plain JavaScript (SpiderMonkey, no Node.js APIs, no network).",
        ),
    };
    let files: Vec<TemplateFile> = COMMON
        .iter()
        .chain(match options.language {
            Language::Rust => RUST,
            Language::Python => PYTHON,
            Language::Js => JS,
        })
        .copied()
        .collect();
    let wit_version = crate::wasm::world::runtime_version();
    for (path, text) in files {
        let text = text
            .replace("{{name}}", &options.name)
            .replace("{{sdk_dependency}}", &sdk_dependency)
            .replace("{{language}}", language)
            .replace("{{source}}", source)
            .replace("{{prerequisites}}", prerequisites)
            .replace("{{wit_version}}", &wit_version);
        write_file(&dir.join(path), &text)?;
    }
    if options.language != Language::Rust {
        // Componentizers read the world from WIT files; the Rust SDK carries its own.
        write_file(&dir.join("wit").join("runtime.wit"), RUNTIME_WIT)?;
    }
    Ok(dir)
}

/// A name that is a model name, a crate or package name and a file name all at once.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!(
            "'{name}' cannot name a runtime: use lowercase letters, digits, '-' and '_', \
             starting with a letter (at most 64 characters)"
        );
    }
    // Names cargo keeps for itself or refuses, the SDK's own, and Windows' device names.
    const RESERVED: &[&str] = &[
        "test",
        "core",
        "std",
        "alloc",
        "proc_macro",
        "self",
        "super",
        "crate",
        "mod",
        "fn",
        "struct",
        "enum",
        "impl",
        "type",
        "use",
        "mlhost-guest",
        "mlhost_guest",
        "con",
        "prn",
        "aux",
        "nul",
    ];
    let windows_device = (name.starts_with("com") || name.starts_with("lpt"))
        && name.len() == 4
        && name.ends_with(|c: char| c.is_ascii_digit());
    if RESERVED.contains(&name) || windows_device {
        bail!("'{name}' is a reserved name (of Rust, cargo or Windows): choose another");
    }
    Ok(())
}

/// The `mlhost-guest = ...` value of a new Rust project.
fn sdk_dependency(sdk: Option<&Path>) -> anyhow::Result<String> {
    let path = match sdk {
        Some(path) => {
            if !path.join("Cargo.toml").is_file() {
                bail!("--sdk {}: no Cargo.toml there", path.display());
            }
            path.to_path_buf()
        }
        None if Path::new(SDK_SOURCE).join("Cargo.toml").is_file() => PathBuf::from(SDK_SOURCE),
        // Away from the sources this binary was built from: the SDK is not on a registry.
        None => bail!(
            "the guest SDK this mlhost was built with is not at {SDK_SOURCE} any more: give \
             --sdk DIR, the guest-sdk folder of an mlhost checkout"
        ),
    };
    let path = std::fs::canonicalize(&path)
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    // TOML basic strings take escapes: write the path with forward slashes (Windows too).
    let path = path.to_string_lossy().replace('\\', "/");
    let path = path.strip_prefix("//?/").unwrap_or(&path);
    Ok(format!("{{ path = \"{path}\" }}"))
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_crates_packages_and_files() {
        for good in ["scale", "my-model", "model_2"] {
            check_name(good).unwrap();
        }
        for bad in [
            "", "Scale", "2model", "my model", "../x", "a/b", "test", "nul", "com1",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_language_gets_settings_a_request_and_its_sources() {
        let root = tempfile::tempdir().unwrap();
        for (language, source) in [
            (Language::Rust, "src/lib.rs"),
            (Language::Python, "app.py"),
            (Language::Js, "model.js"),
        ] {
            let dir = root.path().join(format!("{language:?}"));
            init(&InitOptions {
                name: "scale-it".into(),
                language,
                dir: Some(dir.clone()),
                sdk: None,
            })
            .unwrap();
            let settings = std::fs::read_to_string(dir.join("model-settings.json")).unwrap();
            let settings: serde_json::Value = serde_json::from_str(&settings).unwrap();
            assert_eq!(settings["name"], "scale-it");
            assert_eq!(settings["implementation"], "build/scale-it.wasm");
            assert!(dir.join(source).is_file(), "{language:?}");
            let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
            assert!(!readme.contains("{{"), "{readme}");
            assert_eq!(
                dir.join("wit/runtime.wit").is_file(),
                language != Language::Rust
            );
        }
        let cargo_toml =
            std::fs::read_to_string(root.path().join("Rust").join("Cargo.toml")).unwrap();
        assert!(
            cargo_toml.contains("mlhost-guest = { path = \""),
            "{cargo_toml}"
        );
    }

    #[test]
    fn a_folder_with_files_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("keep.txt"), "mine").unwrap();
        let error = init(&InitOptions {
            name: "scale".into(),
            language: Language::Rust,
            dir: Some(root.path().to_path_buf()),
            sdk: None,
        })
        .unwrap_err();
        assert!(error.to_string().contains("not empty"), "{error}");
    }
}

//! `mlhost convert MODEL.joblib`: a pickled scikit-learn model converted once to `model.onnx`
//! beside it, by skl2onnx in a Python environment, its answers checked against the pickle's.
//!
//! The work is `scripts/sklearn-to-onnx`'s, embedded here: this module picks the Python, the
//! input signature (the inputs the `model-settings.json` beside the model declares) and where
//! the files go. Unpickling runs the pickle's code: it happens only here, in a command the user
//! runs on their own machine, never in the server.

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The converter: `scripts/sklearn-to-onnx`, run by the chosen Python.
const CONVERTER: &str = include_str!("../../../scripts/sklearn-to-onnx");

/// What the venv `mlhost convert` makes is given (the versions the tests run).
const PINNED: &[&str] = &[
    "scikit-learn==1.9.1",
    "skl2onnx==1.20.0",
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
    "joblib>=1.3",
    "pandas>=2",
];

/// The modules the converter imports.
const NEEDED: &str = "import sklearn, skl2onnx, onnx, onnxruntime, joblib";

/// Options of `mlhost convert`.
#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// The pickled scikit-learn model (joblib or pickle). Loading it runs the code it holds:
    /// convert only files you trust.
    pub model: PathBuf,
    /// The Python to run skl2onnx in (it needs scikit-learn, skl2onnx, onnx, onnxruntime and
    /// joblib). Default: `python3` when it has them, else a venv mlhost makes in its cache
    /// folder with pinned versions.
    #[arg(long, env = "MLHOST_PYTHON", value_name = "PYTHON")]
    pub python: Option<PathBuf>,
    /// Random rows the converted model's answers are checked on.
    #[arg(long, default_value_t = 200)]
    pub rows: u32,
}

/// What a conversion wrote.
#[derive(Debug)]
pub(crate) struct Converted {
    /// `model.onnx`, beside the pickle.
    pub onnx: PathBuf,
    /// The converter's own account (signature, checks).
    pub summary: String,
}

/// `mlhost convert`.
pub(crate) fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    if !args.model.is_file() {
        bail!("{}: no such file", args.model.display());
    }
    let python = python(args.python.as_deref())?;
    let converted = convert(&args.model, &python, args.rows)?;
    print!("{}", converted.summary);
    let folder = converted.onnx.parent().unwrap_or(Path::new("."));
    let settings_file = folder.join("model-settings.json");
    match std::fs::read(&settings_file) {
        Ok(text) => {
            let implementation = serde_json::from_slice::<Value>(&text)
                .ok()
                .and_then(|settings| settings["implementation"].as_str().map(str::to_string));
            match implementation.as_deref() {
                Some("mlserver_sklearn.SKLearnModel") => println!(
                    "{} names mlserver_sklearn.SKLearnModel: mlhost serves {} for it (onnx runtime)",
                    settings_file.display(),
                    converted.onnx.display()
                ),
                Some("onnx") => {}
                _ => println!(
                    "to serve it, set \"implementation\": \"onnx\" and \"parameters\": {{\"uri\": \"./model.onnx\"}} in {}",
                    settings_file.display()
                ),
            }
        }
        Err(_)
            if folder
                .join(crate::repository::mlflow::MLMODEL_FILE)
                .is_file() =>
        {
            println!(
                "{} is an MLflow folder: mlhost serves its sklearn flavour from {}",
                folder.display(),
                converted.onnx.display()
            )
        }
        Err(_) => {
            let name = folder_name(folder);
            let settings = serde_json::json!({
                "name": name, "implementation": "onnx", "parameters": {"uri": "./model.onnx"}
            });
            std::fs::write(&settings_file, format!("{settings:#}\n"))
                .with_context(|| format!("cannot write {}", settings_file.display()))?;
            println!("wrote {}: {settings}", settings_file.display());
        }
    }
    Ok(())
}

/// Converts the pickle `model` with `python`: `model.onnx` beside it, after the converter
/// checked its answers against the pickle's on `rows` random rows.
pub(crate) fn convert(model: &Path, python: &Path, rows: u32) -> anyhow::Result<Converted> {
    if !model.is_file() {
        bail!("{}: no such file", model.display());
    }
    let folder = model
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let inputs = declared_inputs(&folder.join("model-settings.json"))?;
    let scratch = tempfile::tempdir().context("cannot make a temporary folder")?;
    let script = scratch.path().join("sklearn-to-onnx.py");
    std::fs::write(&script, CONVERTER).context("cannot write the converter")?;
    let out = scratch.path().join("out");
    let mut command = Command::new(python);
    command
        .arg(&script)
        .arg(model)
        .arg(&out)
        .args(["--name", &folder_name(folder), "--rows", &rows.to_string()])
        // The script runs here, not again under MLHOST_PYTHON.
        .env("_MLHOST_SKLEARN_TO_ONNX", "1");
    if let Some(inputs) = &inputs {
        command.args(["--inputs", inputs]);
    }
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "converting {} failed ({}):\n{}",
            model.display(),
            output.status,
            stderr.trim_end()
        );
    }
    let onnx = folder.join(crate::repository::mlflow::CONVERTED_FILE);
    std::fs::copy(out.join("model.onnx"), &onnx)
        .with_context(|| format!("cannot write {}", onnx.display()))?;
    let scratch_onnx = out.join("model.onnx").display().to_string();
    let mut summary = String::new();
    for line in stderr.lines().filter(|line| !line.starts_with("warning:")) {
        summary.push_str(&format!("{line}\n"));
    }
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // The script's model-settings.json went to its scratch folder: not the user's.
        if !line.trim_start().starts_with("wrote ") {
            let line = line.replace(&scratch_onnx, &onnx.display().to_string());
            summary.push_str(&format!("{line}\n"));
        }
    }
    summary.push_str(&format!("wrote {}\n", onnx.display()));
    Ok(Converted { onnx, summary })
}

/// The converter's `--inputs` for the inputs a model-settings.json declares: `name:type:width`
/// each (`None` when there is no file or it declares none: the converter works them out).
fn declared_inputs(settings_file: &Path) -> anyhow::Result<Option<String>> {
    let Ok(text) = std::fs::read(settings_file) else {
        return Ok(None);
    };
    let settings: Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not JSON", settings_file.display()))?;
    let Some(inputs) = settings["inputs"]
        .as_array()
        .filter(|inputs| !inputs.is_empty())
    else {
        return Ok(None);
    };
    let specs = inputs
        .iter()
        .map(|input| {
            let name = input["name"].as_str().unwrap_or_default();
            let kind = match input["datatype"].as_str().unwrap_or_default() {
                "FP32" => "float",
                "FP64" => "double",
                "INT64" | "INT32" => "int64",
                "BYTES" => "string",
                other => bail!(
                    "{}: input '{name}' is {other}: skl2onnx takes FP32, FP64, INT64 or BYTES",
                    settings_file.display()
                ),
            };
            let shape: Vec<i64> = input["shape"]
                .as_array()
                .map(|shape| shape.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            let width = match shape.as_slice() {
                [_] => 1,
                [_, width] if *width > 0 => *width,
                _ => bail!(
                    "{}: input '{name}' has shape {shape:?}: give [-1, WIDTH] (or [-1] for one column)",
                    settings_file.display()
                ),
            };
            Ok(format!("{name}:{kind}:{width}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(specs.join(",")))
}

/// The folder's own name (the model's name by default).
fn folder_name(folder: &Path) -> String {
    folder
        .canonicalize()
        .ok()
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "model".to_string())
}

/// The Python to convert with: the one given, else `python3` if it has the packages, else the
/// venv in mlhost's cache folder (made, with the pinned packages, the first time).
pub(crate) fn python(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(python) = given {
        return Ok(python.to_path_buf());
    }
    let system = PathBuf::from(if cfg!(windows) { "python" } else { "python3" });
    if has_packages(&system) {
        return Ok(system);
    }
    let venv = crate::wasm::CompilationCache::default_dir()
        .parent()
        .map(|cache| cache.join("convert-venv"))
        .context("no cache folder for the converter's venv")?;
    let venv_python = if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    };
    if has_packages(&venv_python) {
        return Ok(venv_python);
    }
    eprintln!(
        "{} lacks scikit-learn, skl2onnx, onnx or onnxruntime: making a venv in {} ({})",
        system.display(),
        venv.display(),
        PINNED.join(" ")
    );
    let made = Command::new(&system)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .with_context(|| format!("cannot run {}", system.display()))?;
    if !made.success() {
        bail!("`{} -m venv {}` failed", system.display(), venv.display());
    }
    let installed = Command::new(&venv_python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PINNED)
        .status()
        .with_context(|| format!("cannot run {}", venv_python.display()))?;
    if !installed.success() || !has_packages(&venv_python) {
        bail!(
            "cannot install {} into {}; give a Python that has them with --python (or MLHOST_PYTHON)",
            PINNED.join(" "),
            venv.display()
        );
    }
    Ok(venv_python)
}

/// Whether `python` runs and imports what the converter needs.
fn has_packages(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", NEEDED])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_inputs_become_the_converter_s_signature() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model-settings.json");
        assert_eq!(declared_inputs(&file).unwrap(), None);
        std::fs::write(
            &file,
            r#"{"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]},
                           {"name": "city", "datatype": "BYTES", "shape": [-1]}]}"#,
        )
        .unwrap();
        assert_eq!(
            declared_inputs(&file).unwrap().as_deref(),
            Some("input-0:float:4,city:string:1")
        );
        std::fs::write(
            &file,
            r#"{"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}]}"#,
        )
        .unwrap();
        let error = declared_inputs(&file).unwrap_err().to_string();
        assert!(error.contains("give [-1, WIDTH]"), "{error}");
        std::fs::write(&file, r#"{"inputs": []}"#).unwrap();
        assert_eq!(declared_inputs(&file).unwrap(), None);
    }
}

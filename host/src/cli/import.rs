//! `mlhost import MLSERVER_REPO [OUT]`: an MLServer repository written out as an mlhost one.
//!
//! Each `model-settings.json` below the repository is one model, and ends one of three ways:
//! - **served as is**: a built-in runtime, MLServer's XGBoost, LightGBM or CatBoost runtime, a
//!   `.wasm` component, or an MLflow folder whose flavour mlhost serves; its folder's files are
//!   linked (hard links) or copied;
//! - **converted**: a scikit-learn pickle (`mlserver_sklearn.SKLearnModel`, or an MLflow
//!   `sklearn` flavour) converted to `model.onnx` as `mlhost convert` does; the pickle is not
//!   copied;
//! - **needs work**: a custom Python runtime (to be written as a runtime: `mlhost init --lang
//!   python`), a flavour or file mlhost cannot serve, a `parameters.uri` outside the model's
//!   folder, or a conversion that failed; not written.
//!
//! The server's `settings.json` is copied. The command prints a report of every model and exits
//! non-zero when any needs work.

use super::convert;
use crate::repository::mlflow;
use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `mlhost import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The MLServer repository: its settings.json and every model-settings.json below it.
    pub repo: PathBuf,
    /// Where to write the mlhost repository (default: REPO-mlhost beside it). Must not exist
    /// or be empty.
    pub out: Option<PathBuf>,
    /// The Python that converts scikit-learn pickles (see `mlhost convert --help`).
    #[arg(long, env = "MLHOST_PYTHON", value_name = "PYTHON")]
    pub python: Option<PathBuf>,
}

/// How one model was imported.
#[derive(Debug, PartialEq)]
enum Outcome {
    AsIs(String),
    Converted(String),
    NeedsWork(String),
}

/// The runtimes a model-settings.json may name that mlhost serves from the files as they are.
const SERVED_AS_IS: &[(&str, &str)] = &[
    ("linear", "the linear runtime"),
    ("trees", "the trees runtime"),
    ("xgboost", "the trees runtime"),
    ("lightgbm", "the trees runtime"),
    ("catboost", "the trees runtime"),
    ("onnx", "the onnx runtime"),
    ("mlserver_xgboost.XGBoostModel", "the trees runtime"),
    ("mlserver_lightgbm.LightGBMModel", "the trees runtime"),
    ("mlserver_catboost.CatboostModel", "the trees runtime"),
];

/// `mlhost import`.
pub(crate) fn run(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let repo = &args.repo;
    if !repo.is_dir() {
        bail!("{}: not a folder", repo.display());
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let name = repo
            .canonicalize()
            .ok()
            .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "models".to_string());
        repo.join("..").join(format!("{name}-mlhost"))
    });
    if out.exists() && std::fs::read_dir(&out)?.next().is_some() {
        bail!("{}: already exists and is not empty", out.display());
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    if repo.join("settings.json").is_file() {
        std::fs::copy(repo.join("settings.json"), out.join("settings.json"))
            .context("cannot copy settings.json")?;
    }
    let mut files = Vec::new();
    settings_files(repo, &mut files)?;
    files.sort();
    let mut python = None;
    let mut rows = Vec::new();
    for file in files {
        let folder = file.parent().unwrap_or(repo);
        let relative = folder
            .strip_prefix(repo)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let target = out.join(&relative);
        let (name, outcome) = match import_model(folder, &target, args, &mut python) {
            Ok(imported) => imported,
            Err(error) => (
                relative.display().to_string(),
                Outcome::NeedsWork(format!("{error:#}")),
            ),
        };
        if matches!(outcome, Outcome::NeedsWork(_)) && target.exists() {
            std::fs::remove_dir_all(&target).ok();
        }
        rows.push((name, relative, outcome));
    }
    Ok(report(repo, &out, &rows))
}

/// Prints the report; the exit code is a failure when a model needs work.
fn report(repo: &Path, out: &Path, rows: &[(String, PathBuf, Outcome)]) -> ExitCode {
    println!("imported {} into {}:", repo.display(), out.display());
    let mut needs_work = 0;
    for (name, folder, outcome) in rows {
        let (word, why) = match outcome {
            Outcome::AsIs(why) => ("served as is", why),
            Outcome::Converted(why) => ("converted", why),
            Outcome::NeedsWork(why) => {
                needs_work += 1;
                ("needs work", why)
            }
        };
        println!("  {name} ({}): {word}: {why}", folder.display());
    }
    let served = rows.len() - needs_work;
    println!(
        "{served} of {} models served by mlhost from {}; {needs_work} {} work",
        rows.len(),
        out.display(),
        if needs_work == 1 { "needs" } else { "need" }
    );
    if needs_work > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Every `model-settings.json` below `dir` (hidden folders skipped, as the server does).
fn settings_files(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if entry.file_type()?.is_dir() && !hidden {
            settings_files(&entry.path(), files)?;
        } else if entry.file_name() == "model-settings.json" {
            files.push(entry.path());
        }
    }
    Ok(())
}

/// Imports the model of `folder` into `target`: its name and how it went.
fn import_model(
    folder: &Path,
    target: &Path,
    args: &ImportArgs,
    python: &mut Option<PathBuf>,
) -> anyhow::Result<(String, Outcome)> {
    let settings_file = folder.join("model-settings.json");
    let mut settings: Value = serde_json::from_slice(&std::fs::read(&settings_file)?)
        .with_context(|| format!("{} is not JSON", settings_file.display()))?;
    let name = settings["name"]
        .as_str()
        .map(str::to_string)
        .or_else(|| folder.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let implementation = settings["implementation"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let uri = settings["parameters"]["uri"].as_str().map(str::to_string);
    if let Some(outside) = uri.as_deref().and_then(|uri| outside_folder(folder, uri)) {
        return Ok((name, Outcome::NeedsWork(outside)));
    }
    let outcome = if let Some((_, runtime)) = SERVED_AS_IS
        .iter()
        .find(|(known, _)| *known == implementation)
    {
        copy_folder(folder, target, &[])?;
        Outcome::AsIs(format!("{implementation}: {runtime}"))
    } else if implementation.ends_with(".wasm") {
        copy_folder(folder, target, &[])?;
        Outcome::AsIs(format!("the component {implementation}"))
    } else if implementation == "mlserver_sklearn.SKLearnModel" {
        let pickle = sklearn_pickle(folder, uri.as_deref())?;
        settings["implementation"] = Value::from("onnx");
        settings["parameters"]["uri"] = Value::from("./model.onnx");
        let dropped = settings
            .as_object_mut()
            .and_then(|object| object.remove("outputs"))
            .is_some();
        let check = convert_pickle(folder, target, &pickle, &settings, args, python)?;
        Outcome::Converted(format!(
            "scikit-learn pickle {} converted to model.onnx (onnx runtime; outputs `label`, \
             `probabilities` for a classifier){check}{}",
            pickle.display(),
            if dropped {
                "; the declared outputs were dropped"
            } else {
                ""
            }
        ))
    } else if mlflow::MLFLOW_IMPLEMENTATIONS.contains(&implementation.as_str())
        || (implementation.is_empty() && mlflow::mlflow_folder(folder, uri.as_deref()).is_some())
    {
        import_mlflow(folder, target, uri.as_deref(), args, python)?
    } else if implementation.is_empty() {
        Outcome::NeedsWork("no `implementation`".to_string())
    } else {
        Outcome::NeedsWork(format!(
            "custom Python runtime `{implementation}`: write it as an mlhost runtime \
             (`mlhost init {name} --lang python`, see docs/writing-runtimes.md) and name its \
             .wasm in `implementation`"
        ))
    };
    Ok((name, outcome))
}

/// Why `uri` cannot be served from the model's folder, if it names a file outside it (a
/// runtime reads its own folder only) or nothing.
fn outside_folder(folder: &Path, uri: &str) -> Option<String> {
    // Object storage (s3://, https://, ...) is fetched when the model loads.
    if crate::storage::is_remote(uri) {
        return None;
    }
    let Ok(target) = folder.join(uri).canonicalize() else {
        return Some(format!("parameters.uri {uri} names no file"));
    };
    let inside = folder
        .canonicalize()
        .is_ok_and(|folder| target.starts_with(folder));
    (!inside).then(|| {
        format!(
            "parameters.uri {uri} is outside the model's folder: an mlhost runtime reads its own \
             folder only; move the file into it"
        )
    })
}

/// An MLflow folder: copied, its sklearn pickle converted when that is its flavour.
fn import_mlflow(
    folder: &Path,
    target: &Path,
    uri: Option<&str>,
    args: &ImportArgs,
    python: &mut Option<PathBuf>,
) -> anyhow::Result<Outcome> {
    let Some(source) = mlflow::mlflow_folder(folder, uri) else {
        return Ok(Outcome::NeedsWork(format!(
            "MLflow runtime, but {} holds no MLmodel file",
            folder.join(uri.unwrap_or(".")).display()
        )));
    };
    let relative = source.strip_prefix(folder).unwrap_or(Path::new(""));
    match mlflow::read(&source) {
        Ok(model) => {
            copy_folder(folder, target, &[])?;
            Ok(Outcome::AsIs(format!(
                "MLflow flavour `{}` ({}): the {} runtime{}",
                model.flavour,
                model.file,
                model.runtime,
                if model.inputs.is_empty() {
                    String::new()
                } else {
                    format!(", {} inputs from its signature", model.inputs.len())
                }
            )))
        }
        Err(mlflow::MlflowError::NotServable { reason, .. })
            if reason.contains("mlhost convert") =>
        {
            let pickle = mlflow_pickle(&source)?;
            let skip = [relative.join(&pickle)];
            copy_folder(folder, target, &skip)?;
            let copied = target.join(relative).join(&pickle);
            std::fs::copy(source.join(&pickle), &copied)?;
            let converted = convert::convert(&copied, converter(args, python)?, 200);
            std::fs::remove_file(&copied).ok();
            let check = checked(&converted?);
            Ok(Outcome::Converted(format!(
                "MLflow sklearn flavour: {pickle} converted to model.onnx (onnx runtime){check}"
            )))
        }
        Err(error) => Ok(Outcome::NeedsWork(error.to_string())),
    }
}

/// The pickle of an MLflow sklearn flavour.
fn mlflow_pickle(dir: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(dir.join(mlflow::MLMODEL_FILE))?;
    let value: serde_norway::Value = serde_norway::from_str(&text)?;
    Ok(value["flavors"]["sklearn"]["pickled_model"]
        .as_str()
        .unwrap_or("model.pkl")
        .to_string())
}

/// The pickle an MLServer scikit-learn model-settings.json names (MLServer's own default names
/// when the uri is a folder).
fn sklearn_pickle(folder: &Path, uri: Option<&str>) -> anyhow::Result<PathBuf> {
    let target = folder.join(uri.unwrap_or("."));
    if target.is_file() {
        return Ok(target
            .strip_prefix(folder)
            .map(Path::to_path_buf)
            .unwrap_or(target));
    }
    ["model.joblib", "model.pickle", "model.pkl"]
        .iter()
        .map(|name| target.join(name))
        .find(|path| path.is_file())
        .and_then(|path| path.strip_prefix(folder).ok().map(Path::to_path_buf))
        .with_context(|| format!("no scikit-learn model file in {}", target.display()))
}

/// Converts `pickle` (relative to `folder`) into `target/model.onnx`: the folder is copied
/// without the pickle and its model-settings.json (`settings` is written in its place, a new
/// file: never through a link to the original), and the pickle is converted from a copy that
/// is removed afterwards.
fn convert_pickle(
    folder: &Path,
    target: &Path,
    pickle: &Path,
    settings: &Value,
    args: &ImportArgs,
    python: &mut Option<PathBuf>,
) -> anyhow::Result<String> {
    let settings_file = PathBuf::from("model-settings.json");
    copy_folder(
        folder,
        target,
        &[pickle.to_path_buf(), settings_file.clone()],
    )?;
    std::fs::write(target.join(&settings_file), format!("{settings:#}\n"))?;
    let copied = target.join(pickle.file_name().context("no file name")?);
    std::fs::copy(folder.join(pickle), &copied)?;
    let converted = convert::convert(&copied, converter(args, python)?, 200);
    std::fs::remove_file(&copied).ok();
    Ok(checked(&converted?))
}

/// The converter's account of its check (`checked on 200 random rows: ...`).
fn checked(converted: &convert::Converted) -> String {
    converted
        .summary
        .lines()
        .find(|line| line.trim_start().starts_with("checked on"))
        .map(|line| format!("; {}", line.trim()))
        .unwrap_or_default()
}

/// The converter's Python, found once.
fn converter<'a>(args: &ImportArgs, python: &'a mut Option<PathBuf>) -> anyhow::Result<&'a Path> {
    if python.is_none() {
        *python = Some(convert::python(args.python.as_deref())?);
    }
    Ok(python.as_deref().expect("set above"))
}

/// Links (or, where links cannot be made, copies) every file of `from` into `to`, but the
/// `skip` ones (relative to `from`); hidden entries are skipped.
fn copy_folder(from: &Path, to: &Path, skip: &[PathBuf]) -> anyhow::Result<()> {
    copy_below(from, from, to, skip)
}

fn copy_below(root: &Path, from: &Path, to: &Path, skip: &[PathBuf]) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let destination = to.join(entry.file_name());
        if path.is_dir() {
            copy_below(root, &path, &destination, skip)?;
        } else if !skip.iter().any(|skipped| root.join(skipped) == path)
            && std::fs::hard_link(&path, &destination).is_err()
        {
            std::fs::copy(&path, &destination)
                .with_context(|| format!("cannot copy {}", path.display()))?;
        }
    }
    Ok(())
}

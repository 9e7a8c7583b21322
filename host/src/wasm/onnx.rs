//! The host side of the WIT `onnx` interface, on an instance's state: sessions of the native
//! ONNX backend ([`crate::native`]) owned by the guest's resource table, opened from files of
//! the model's own folder only, and runs bounded by the call's deadline and output limit.

use super::bindings::mlhost::runtime::onnx::{self, BackendChoice, Port, RunError};
use super::bindings::types as wit;
use super::convert::{datatype_from_wit, datatype_to_wit};
use super::instance::GUEST_MODEL_DIR;
use super::state::InstanceState;
use crate::native::{self, OnnxSession};
use std::path::{Component, Path, PathBuf};
use wasmtime::component::Resource;

impl onnx::Host for InstanceState {
    fn backend(&mut self) -> BackendChoice {
        match self.native().options.choice {
            native::BackendChoice::Auto => BackendChoice::Auto,
            native::BackendChoice::Native => BackendChoice::Native,
            native::BackendChoice::Sandboxed => BackendChoice::Sandboxed,
        }
    }

    fn available(&mut self) -> Result<(), String> {
        self.native().options.available()
    }
}

impl onnx::HostSession for InstanceState {
    fn open(&mut self, path: String) -> Result<Resource<OnnxSession>, String> {
        let options = self.native().options;
        options.available()?;
        let file = resolve_model_path(&self.native().model_dir, &path)?;
        let session = OnnxSession::open(&file, options.intra_op_threads)?;
        self.table()
            .push(session)
            .map_err(|error| format!("cannot keep the session: {error}"))
    }

    fn from_bytes(&mut self, graph: Vec<u8>) -> Result<Resource<OnnxSession>, String> {
        let options = self.native().options;
        options.available()?;
        let session = OnnxSession::from_bytes(&graph, options.intra_op_threads)?;
        self.table()
            .push(session)
            .map_err(|error| format!("cannot keep the session: {error}"))
    }

    fn inputs(&mut self, session: Resource<OnnxSession>) -> Vec<Port> {
        self.table()
            .get(&session)
            .map(|session| ports(session.inputs()))
            .unwrap_or_default()
    }

    fn outputs(&mut self, session: Resource<OnnxSession>) -> Vec<Port> {
        self.table()
            .get(&session)
            .map(|session| ports(session.outputs()))
            .unwrap_or_default()
    }

    fn run(
        &mut self,
        session: Resource<OnnxSession>,
        inputs: Vec<wit::Tensor>,
        outputs: Vec<String>,
    ) -> Result<Vec<wit::Tensor>, RunError> {
        let deadline = self.deadline();
        self.native().used = true;
        let max_output_bytes = self.native().max_output_bytes;
        let inputs: Vec<native::RawTensor> = inputs.into_iter().map(raw_from_wit).collect();
        let session = self
            .table()
            .get_mut(&session)
            .map_err(|error| RunError::Failed(format!("no such session: {error}")))?;
        match session.run(&inputs, &outputs, deadline, max_output_bytes) {
            Ok(answer) => Ok(answer.into_iter().map(raw_to_wit).collect()),
            Err(native::RunError::InvalidInput(message)) => Err(RunError::InvalidInput(message)),
            Err(native::RunError::Deadline) => {
                self.native().deadline_hit = true;
                Err(RunError::Failed(native::RunError::Deadline.to_string()))
            }
            Err(other) => Err(RunError::Failed(other.to_string())),
        }
    }

    fn drop(&mut self, session: Resource<OnnxSession>) -> wasmtime::Result<()> {
        self.table().delete(session)?;
        Ok(())
    }
}

/// The host file a guest path names: under `/model` (or relative to it), without `..`, and
/// inside the model's folder once symbolic links are resolved.
fn resolve_model_path(model_dir: &Path, guest_path: &str) -> Result<PathBuf, String> {
    let relative = match guest_path.strip_prefix(GUEST_MODEL_DIR) {
        Some("") => ".",
        Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
        _ => guest_path,
    };
    let relative = Path::new(relative);
    if relative.is_absolute()
        || relative
            .components()
            .any(|part| !matches!(part, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "'{guest_path}' is not a file of the model's folder ({GUEST_MODEL_DIR})"
        ));
    }
    let outside = || format!("'{guest_path}' is outside the model's folder");
    let folder = model_dir
        .canonicalize()
        .map_err(|error| format!("cannot open the model's folder: {error}"))?;
    let file = folder
        .join(relative)
        .canonicalize()
        .map_err(|error| format!("cannot open '{guest_path}': {error}"))?;
    if !file.starts_with(&folder) {
        return Err(outside());
    }
    Ok(file)
}

fn ports(ports: &[native::Port]) -> Vec<Port> {
    ports
        .iter()
        .map(|port| Port {
            name: port.name.clone(),
            datatype: datatype_to_wit(port.datatype),
            shape: port.shape.clone(),
        })
        .collect()
}

fn raw_from_wit(tensor: wit::Tensor) -> native::RawTensor {
    native::RawTensor {
        name: tensor.name,
        datatype: datatype_from_wit(tensor.datatype),
        shape: tensor.shape,
        data: tensor.data,
    }
}

fn raw_to_wit(tensor: native::RawTensor) -> wit::Tensor {
    wit::Tensor {
        name: tensor.name,
        datatype: datatype_to_wit(tensor.datatype),
        shape: tensor.shape,
        data: tensor.data,
        parameters: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_stay_in_the_model_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.onnx"), b"x").unwrap();
        let resolved = resolve_model_path(dir.path(), "/model/model.onnx").unwrap();
        assert!(resolved.ends_with("model.onnx"));
        assert!(resolve_model_path(dir.path(), "model.onnx").is_ok());
        for escape in [
            "/model/../etc/passwd",
            "/etc/passwd",
            "../x",
            "/model/missing.onnx",
        ] {
            assert!(resolve_model_path(dir.path(), escape).is_err(), "{escape}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_link_out_of_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link.onnx")).unwrap();
        let error = resolve_model_path(dir.path(), "/model/link.onnx").unwrap_err();
        assert!(error.contains("outside"), "{error}");
    }
}

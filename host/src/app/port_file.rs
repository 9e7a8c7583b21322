//! The port file (`serve --port-file`): the bound ports as JSON, for whoever started the server.

use anyhow::Context;
use std::path::Path;

/// The ports the server answers on, as the port file holds them:
/// `{"http": 8080, "grpc": 8081, "metrics": 8082}` (`metrics` is null when it is off), with
/// `"modelmesh"` when ModelMesh's SPI is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(super) struct BoundPorts {
    /// The REST port.
    pub(super) http: u16,
    /// The gRPC port.
    pub(super) grpc: u16,
    /// The metrics port, when the metrics server is on.
    pub(super) metrics: Option<u16>,
    /// The port of ModelMesh's model-runtime SPI, when it is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) modelmesh: Option<u16>,
}

/// Writes `ports` to `path` atomically: to `PATH.tmp` first, then renamed over `path`, so that a
/// reader sees either no file or the whole of it.
pub(super) fn write(path: &Path, ports: &BoundPorts) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    let json = serde_json::to_vec(ports).context("cannot encode the bound ports")?;
    // A few bytes: written synchronously, before any server starts.
    std::fs::write(temporary, json)
        .with_context(|| format!("cannot write the port file {}", temporary.display()))?;
    std::fs::rename(temporary, path)
        .with_context(|| format!("cannot write the port file {}", path.display()))?;
    tracing::debug!(path = %path.display(), "wrote the port file");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_file_is_the_bound_ports_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ports.json");
        let ports = BoundPorts {
            http: 8080,
            grpc: 8081,
            metrics: Some(8082),
            modelmesh: None,
        };
        write(&path, &ports).unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"http": 8080, "grpc": 8081, "metrics": 8082})
        );
        assert!(!dir.path().join("ports.json.tmp").exists());

        write(
            &path,
            &BoundPorts {
                metrics: None,
                ..ports
            },
        )
        .unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"http": 8080, "grpc": 8081, "metrics": null})
        );

        let with_mesh = BoundPorts {
            modelmesh: Some(8085),
            ..ports
        };
        write(&path, &with_mesh).unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(written["modelmesh"], 8085);
    }

    #[test]
    fn an_unwritable_port_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/ports.json");
        let ports = BoundPorts {
            http: 1,
            grpc: 2,
            metrics: None,
            modelmesh: None,
        };
        let error = write(&path, &ports).unwrap_err();
        assert!(format!("{error:#}").contains("cannot write the port file"));
    }
}

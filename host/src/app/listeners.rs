//! Binds every port the server answers on, before any server starts, and logs each address.

use super::port_file::BoundPorts;
use crate::config::Settings;
use anyhow::Context;
use tokio::net::TcpListener;

/// The server's bound sockets.
pub(super) struct Listeners {
    /// The REST front end's.
    pub(super) rest: TcpListener,
    /// The gRPC front end's.
    pub(super) grpc: TcpListener,
    /// The metrics server's, with its endpoint, when the metrics server is on.
    pub(super) metrics: Option<(TcpListener, String)>,
    /// ModelMesh's model-runtime SPI's, when `modelmesh_port` is set.
    pub(super) modelmesh: Option<TcpListener>,
    /// The ports they are bound to (those asked for, or the ones picked for port 0).
    pub(super) ports: BoundPorts,
}

impl Listeners {
    /// Binds the REST, gRPC, (when there is a metrics endpoint) metrics and (when set) ModelMesh
    /// ports of `settings`' host, in that order.
    pub(super) async fn bind(settings: &Settings) -> anyhow::Result<Listeners> {
        let rest = bind(settings, settings.http_port).await?;
        tracing::info!("REST server listening on http://{}", rest.local_addr()?);
        let grpc = bind(settings, settings.grpc_port).await?;
        tracing::info!("gRPC server listening on {}", grpc.local_addr()?);
        let metrics = match &settings.metrics_endpoint {
            Some(endpoint) => {
                let listener = bind(settings, settings.metrics_port).await?;
                tracing::info!(
                    "metrics server listening on http://{}{endpoint}",
                    listener.local_addr()?
                );
                Some((listener, endpoint.clone()))
            }
            None => None,
        };
        let modelmesh = match settings.modelmesh_port {
            Some(port) => {
                let listener = bind(settings, port).await?;
                tracing::info!(
                    "ModelMesh model-runtime SPI listening on {}",
                    listener.local_addr()?
                );
                Some(listener)
            }
            None => None,
        };
        let ports = BoundPorts {
            http: rest.local_addr()?.port(),
            grpc: grpc.local_addr()?.port(),
            metrics: match &metrics {
                Some((listener, _)) => Some(listener.local_addr()?.port()),
                None => None,
            },
            modelmesh: match &modelmesh {
                Some(listener) => Some(listener.local_addr()?.port()),
                None => None,
            },
        };
        Ok(Listeners {
            rest,
            grpc,
            metrics,
            modelmesh,
            ports,
        })
    }
}

/// Listens on `port` of the settings' host.
async fn bind(settings: &Settings, port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind((settings.host.as_str(), port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", settings.host, port))
}

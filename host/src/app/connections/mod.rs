//! The connections of every port: accepted within a limit per port, with accept errors logged
//! and backed off ([`accept`]); watched for the header, keep-alive, handshake and idle timeouts
//! ([`io`]); request bodies paced and responses tracked ([`body`]); HTTP/1.1 ports served by
//! hyper with a shutdown that always ends ([`http1`]); the gRPC port's HTTP/2 limits ([`grpc`]).

mod accept;
mod body;
pub(super) mod grpc;
pub(super) mod http1;
mod io;

pub(super) use accept::{Acceptor, Refusal};

use crate::config::{Settings, seconds};
use body::BodyPace;
use std::time::Duration;

/// The timeouts and limits of the connections, from the settings (docs/configuration.md,
/// "Connections and timeouts").
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Open connections per port.
    pub(super) max_connections: usize,
    /// HTTP/1.1: a request's headers, from their first byte.
    pub(super) header_read: Duration,
    /// HTTP/1.1: an idle keep-alive connection.
    pub(super) keep_alive: Duration,
    /// HTTP/1.1 bodies and unary gRPC requests: how fast they must arrive.
    pub(super) body_pace: BodyPace,
    /// Every port: how long a write may wait for the client to take data.
    pub(super) send_timeout: Duration,
    /// HTTP/2: the preface and SETTINGS, from the connection.
    pub(super) grpc_handshake: Duration,
    /// HTTP/2: a connection with no stream open.
    pub(super) grpc_idle: Duration,
    /// HTTP/2: between pings.
    pub(super) grpc_keepalive_interval: Duration,
    /// HTTP/2: a ping's answer.
    pub(super) grpc_keepalive_timeout: Duration,
    /// HTTP/2: streams open at once per connection.
    pub(super) grpc_max_concurrent_streams: u32,
    /// HTTP/2: each stream's flow-control window, in bytes.
    pub(super) grpc_stream_window: u32,
    /// HTTP/2: each connection's flow-control window, in bytes.
    pub(super) grpc_connection_window: u32,
    /// HTTP/2: a call's header list, in bytes.
    pub(super) grpc_max_header_list: u32,
    /// How long a shutdown lets open requests finish.
    pub(super) grace: Duration,
}

impl Limits {
    /// The limits `settings` ask for.
    pub(super) fn from_settings(settings: &Settings) -> Limits {
        Limits {
            max_connections: usize::try_from(settings.max_connections).unwrap_or(usize::MAX),
            header_read: seconds(settings.header_read_timeout_seconds),
            keep_alive: seconds(settings.keep_alive_timeout_seconds),
            body_pace: BodyPace {
                read_timeout: seconds(settings.body_read_timeout_seconds),
                min_rate: settings.min_body_rate_bytes_per_second,
            },
            send_timeout: seconds(settings.send_timeout_seconds),
            grpc_handshake: seconds(settings.grpc_handshake_timeout_seconds),
            grpc_idle: seconds(settings.grpc_idle_timeout_seconds),
            grpc_keepalive_interval: seconds(settings.grpc_keepalive_interval_seconds),
            grpc_keepalive_timeout: seconds(settings.grpc_keepalive_timeout_seconds),
            grpc_max_concurrent_streams: settings.grpc_max_concurrent_streams,
            grpc_stream_window: settings.grpc_stream_window_bytes,
            grpc_connection_window: settings.grpc_connection_window_bytes,
            grpc_max_header_list: settings.grpc_max_header_list_bytes,
            grace: seconds(settings.shutdown_grace_period_seconds),
        }
    }
}

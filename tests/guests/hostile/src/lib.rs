//! A hostile runtime, for tests only: the request parameter `attack` picks what it does.
//!
//! Without `attack` it behaves: it echoes its one input as output `echo`. The attacks:
//! `loop` (spin forever), `grow` (allocate until refused), `trap` (wasm `unreachable`),
//! `panic`, `stack` (unbounded recursion), `files` (try the host's files), `env` (read the
//! environment), `socket` (open a TCP connection to the `port` parameter), `big-output` (return
//! `megabytes` MiB), `many-outputs` (10,000 outputs), `sleep` (an hour, in a host call),
//! `nap` (20 ms, then echo), `chatter` (write a lot to stdout and stderr, then echo).
//!
//! Not attacks, but probes of the protocol for the tests: `inspect` reports what the runtime
//! sees of content types, input bytes and headers, and answers with the header `x-runtime:
//! hostile` and a BYTES output `blob` holding bytes that are not text (content type `base64`);
//! `round-trip` reads each input as its content type says, with the SDK's decoders, and writes
//! it back as an output of the same name and content type (a `datetime` input also gives
//! `NAME_unix`, its instants in Unix seconds; a `pd` request also gives `table_rows` and
//! `table_columns`).
//! On a streaming endpoint, the parameter `responses` = N makes it send N responses, each with
//! an INT64 output `index`, before it returns nothing more; with `megabytes` = M each response
//! also carries a UINT8 output `blob` of M MiB (a stream a client that never reads must not let
//! pile up in the host).
//!
//! The probing attacks answer with a BYTES output `report`: one line per attempt, `ok ...` where
//! the attempt succeeded and `denied ...` where it failed.

use mlhost_guest::{
    Datatype, Error, InferenceRequest, InferenceResponse, Model, ModelMetadata, ModelSettings,
    ParameterValue, Responses, Tensor, TensorMetadata, export_model, find_parameter,
};
use std::hint::black_box;

struct Hostile {
    /// The file the runtime is allowed to read: its own settings file.
    own_file: String,
}

impl Model for Hostile {
    fn load(settings: ModelSettings) -> Result<Self, Error> {
        Ok(Hostile {
            own_file: format!("{}/model-settings.json", settings.uri),
        })
    }

    fn metadata(&self) -> ModelMetadata {
        ModelMetadata::new("hostile")
            .output(TensorMetadata::new("echo", Datatype::Fp64, &[-1]))
            .output(TensorMetadata::new("report", Datatype::Bytes, &[-1]))
    }

    fn predict(&self, request: InferenceRequest) -> Result<InferenceResponse, Error> {
        let attack = match find_parameter(&request.parameters, "attack") {
            Some(ParameterValue::String(attack)) => attack.as_str(),
            _ => "",
        };
        match attack {
            "" => echo(&request),
            "loop" => {
                let mut counter = 0u64;
                loop {
                    counter = black_box(counter.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "trap" => trap(),
            "panic" => panic!("the hostile runtime panics on purpose"),
            "stack" => Ok(InferenceResponse::new().output(Tensor::from_values(
                "echo",
                &[1],
                &[recurse(0) as f64],
            )?)),
            "files" => report(self.probe_files()),
            "env" => report(probe_env()),
            "socket" => {
                let port = match find_parameter(&request.parameters, "port") {
                    Some(ParameterValue::Int64(port)) => *port as u16,
                    _ => return Err(Error::invalid_input("socket needs an int `port` parameter")),
                };
                report(probe_socket(port))
            }
            "big-output" => {
                let megabytes = match find_parameter(&request.parameters, "megabytes") {
                    Some(ParameterValue::Int64(megabytes)) => *megabytes as usize,
                    _ => 64,
                };
                let values = vec![1.0f64; megabytes * (1 << 20) / 8];
                Ok(InferenceResponse::new().output(Tensor::from_values(
                    "echo",
                    &[values.len() as u64],
                    &values,
                )?))
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                echo(&request)
            }
            "nap" => {
                let started = std::time::Instant::now();
                std::thread::sleep(std::time::Duration::from_millis(20));
                if started.elapsed() < std::time::Duration::from_millis(20) {
                    return Err(Error::internal("the nap was cut short"));
                }
                echo(&request)
            }
            "many-outputs" => {
                let mut response = InferenceResponse::new();
                for index in 0..10_000 {
                    response = response.output(Tensor::from_values(
                        &format!("o{index}"),
                        &[1],
                        &[1.0f64],
                    )?);
                }
                Ok(response)
            }
            "twin-outputs" => Ok(InferenceResponse::new()
                .output(Tensor::from_values("twin", &[1], &[1.0f64])?)
                .output(Tensor::from_values("twin", &[1], &[2.0f64])?)),
            "inspect" => inspect(&request),
            "round-trip" => round_trip(&request),
            "chatter" => {
                let line = "x".repeat(1000);
                for index in 0..2000 {
                    println!("stdout line {index} {line}");
                    eprintln!("stderr line {index} {line}");
                }
                echo(&request)
            }
            other => Err(Error::invalid_input(format!("unknown attack '{other}'"))),
        }
    }

    fn predict_stream(
        &self,
        request: InferenceRequest,
        responses: &mut Responses,
    ) -> Result<(), Error> {
        let count = match find_parameter(&request.parameters, "responses") {
            Some(ParameterValue::Int64(count)) => *count,
            _ => return responses.send(self.predict(request)?),
        };
        let blob = match find_parameter(&request.parameters, "megabytes") {
            Some(ParameterValue::Int64(megabytes)) => vec![1u8; *megabytes as usize * (1 << 20)],
            _ => Vec::new(),
        };
        for index in 0..count {
            let mut response =
                InferenceResponse::new().output(Tensor::from_values("index", &[1], &[index])?);
            if !blob.is_empty() {
                response =
                    response.output(Tensor::from_values("blob", &[blob.len() as u64], &blob)?);
            }
            responses.send(response)?;
        }
        Ok(())
    }
}

fn round_trip(request: &InferenceRequest) -> Result<InferenceResponse, Error> {
    let mut response = InferenceResponse::new();
    for input in &request.inputs {
        let name = input.name.as_str();
        let shape = &input.shape;
        response = match input.content_type() {
            Some("str") => response.output(
                Tensor::from_bytes_elements(name, shape, &input.strings()?)?
                    .with_content_type("str"),
            ),
            Some("base64") => response.output(
                Tensor::from_bytes_elements(name, shape, &input.bytes_elements()?)?
                    .with_content_type("base64"),
            ),
            Some("datetime") => {
                let instants: Vec<i64> = input
                    .datetimes()?
                    .iter()
                    .map(|at| at.unix_seconds)
                    .collect();
                response
                    .output(
                        Tensor::from_bytes_elements(name, shape, &input.strings()?)?
                            .with_content_type("datetime"),
                    )
                    .output(Tensor::from_values(
                        &format!("{name}_unix"),
                        shape,
                        &instants,
                    )?)
            }
            _ => response.output(
                Tensor::from_values(name, shape, &input.to_f64_vec()?)?.with_content_type("np"),
            ),
        };
    }
    if request.content_type() == Some("pd") {
        let table = request.table()?;
        let names: Vec<&str> = table.columns.iter().map(|column| column.name).collect();
        response = response
            .output(Tensor::from_values(
                "table_rows",
                &[1],
                &[table.rows as i64],
            )?)
            .output(Tensor::from_bytes_elements(
                "table_columns",
                &[names.len() as u64],
                &names,
            )?);
    }
    Ok(response)
}

fn inspect(request: &InferenceRequest) -> Result<InferenceResponse, Error> {
    let mut lines = vec![format!("content_type={:?}", request.content_type())];
    for input in &request.inputs {
        let bytes = input
            .bytes_elements()
            .map(|elements| format!("{elements:?}"))
            .unwrap_or_else(|_| format!("{} bytes", input.data.len()));
        lines.push(format!(
            "input {} content_type={:?} elements={bytes}",
            input.name,
            input.content_type()
        ));
    }
    for (name, value) in request.headers() {
        if name.starts_with("x-") {
            lines.push(format!("header {name}={value}"));
        }
    }
    let blob =
        Tensor::from_bytes_elements("blob", &[1], &[[0u8, 255, 10]])?.with_content_type("base64");
    Ok(report(lines)?.output(blob).header("x-runtime", "hostile"))
}

fn echo(request: &InferenceRequest) -> Result<InferenceResponse, Error> {
    let input = request.only_input()?;
    let values = input.to_f64_vec()?;
    Ok(InferenceResponse::new().output(Tensor::from_values("echo", &input.shape, &values)?))
}

fn report(lines: Vec<String>) -> Result<InferenceResponse, Error> {
    Ok(InferenceResponse::new().output(Tensor::from_bytes_elements(
        "report",
        &[lines.len() as u64],
        &lines,
    )?))
}

fn outcome<T, E: std::fmt::Debug>(what: &str, result: Result<T, E>) -> String {
    match result {
        Ok(_) => format!("ok {what}"),
        Err(error) => format!("denied {what}: {error:?}"),
    }
}

#[cfg(target_arch = "wasm32")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_arch = "wasm32"))]
fn trap() -> ! {
    std::process::abort()
}

fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let frame = black_box([depth; 64]);
    recurse(depth + 1) + frame[0]
}

impl Hostile {
    fn probe_files(&self) -> Vec<String> {
        let mut lines = vec![outcome(
            &format!("read own {}", self.own_file),
            std::fs::read(&self.own_file),
        )];
        for path in [
            "/etc/passwd",
            "/model/../../../../etc/passwd",
            "../etc/passwd",
            "/",
            "/tmp",
            "/proc/self/environ",
        ] {
            lines.push(outcome(&format!("read {path}"), std::fs::read(path)));
            lines.push(outcome(&format!("list {path}"), std::fs::read_dir(path)));
        }
        lines.push(outcome(
            "write /model/planted",
            std::fs::write("/model/planted", b"x"),
        ));
        lines.push(outcome(
            "mkdir /model/planted-dir",
            std::fs::create_dir("/model/planted-dir"),
        ));
        lines.push(outcome(
            "remove own file",
            std::fs::remove_file(&self.own_file),
        ));
        lines
    }
}

fn probe_env() -> Vec<String> {
    let mut lines: Vec<String> = std::env::vars()
        .map(|(name, _)| format!("ok variable {name}"))
        .collect();
    for name in ["HOME", "PATH", "MLHOST_SECRET"] {
        lines.push(outcome(&format!("read {name}"), std::env::var(name)));
    }
    lines.push(outcome(
        "read the arguments",
        if std::env::args().count() > 0 {
            Ok(())
        } else {
            Err("none")
        },
    ));
    lines
}

#[cfg(target_arch = "wasm32")]
fn probe_socket(port: u16) -> Vec<String> {
    use wasip2::sockets::{instance_network, network, tcp_create_socket};
    let mut lines = Vec::new();
    let network = instance_network::instance_network();
    match tcp_create_socket::create_tcp_socket(network::IpAddressFamily::Ipv4) {
        Err(error) => lines.push(format!("denied create a TCP socket: {error:?}")),
        Ok(socket) => {
            let address = network::IpSocketAddress::Ipv4(network::Ipv4SocketAddress {
                port,
                address: (127, 0, 0, 1),
            });
            let started = socket.start_connect(&network, address);
            let connected = started.and_then(|()| {
                socket.subscribe().block();
                socket.finish_connect().map(|_| ())
            });
            lines.push(outcome(&format!("connect to 127.0.0.1:{port}"), connected));
            let bind = network::IpSocketAddress::Ipv4(network::Ipv4SocketAddress {
                port: 0,
                address: (0, 0, 0, 0),
            });
            let listener = tcp_create_socket::create_tcp_socket(network::IpAddressFamily::Ipv4);
            lines.push(outcome(
                "bind a listening socket",
                listener.map_err(|e| format!("{e:?}")).and_then(|socket| {
                    socket
                        .start_bind(&network, bind)
                        .map_err(|e| format!("{e:?}"))?;
                    socket.finish_bind().map_err(|e| format!("{e:?}"))
                }),
            ));
        }
    }
    lines.push(outcome(
        "std TcpStream::connect",
        std::net::TcpStream::connect(("127.0.0.1", port)),
    ));
    lines
}

#[cfg(not(target_arch = "wasm32"))]
fn probe_socket(_port: u16) -> Vec<String> {
    vec!["denied not a wasm build".to_string()]
}

export_model!(Hostile);

//! The host side of the WIT `host` interface, on an instance's state: each call goes to the
//! answer being collected ([`super::answer`]); `send-response` also sends, waiting for room in
//! the stream ([`super::stream`]) until the call's deadline.

use super::bindings::mlhost::runtime::{host, types as wit};
use super::state::InstanceState;
use super::stream::{SendFailure, send_blocking};
use wasmtime::Trap;

impl wit::Host for InstanceState {}

impl host::Host for InstanceState {
    fn add_output(
        &mut self,
        name: String,
        datatype: wit::Datatype,
        shape: Vec<u64>,
        data: Vec<u8>,
    ) -> Result<(), String> {
        self.answer().add_output(name, datatype, shape, data)
    }

    fn add_output_parameter(
        &mut self,
        output: Option<String>,
        name: String,
        value: wit::ParameterValue,
    ) -> Result<(), String> {
        self.answer().add_output_parameter(output, name, value)
    }

    fn streaming(&mut self) -> bool {
        self.answer().streaming()
    }

    /// Fails (to the runtime) when the call does not stream or the client has gone; traps as
    /// the epoch does at the deadline ([`Trap::Interrupt`]) when the client reads too slowly
    /// for the response to leave in time, so that the call fails as a deadline exceeded.
    fn send_response(&mut self) -> wasmtime::Result<Result<(), String>> {
        let deadline = self.deadline();
        let (sink, response) = match self.answer().take_response() {
            Ok(taken) => taken,
            Err(reason) => return Ok(Err(reason)),
        };
        match send_blocking(sink, response, deadline) {
            Ok(()) => Ok(Ok(())),
            Err(SendFailure::ClientGone) => Ok(Err("the client has gone".to_string())),
            Err(SendFailure::DeadlinePassed) => Err(wasmtime::Error::new(Trap::Interrupt)),
        }
    }

    fn describe_platform(&mut self, platform: String) -> Result<(), String> {
        self.answer().describe_platform(platform)
    }

    fn describe_tensor(
        &mut self,
        role: wit::TensorRole,
        name: String,
        datatype: wit::Datatype,
        shape: Vec<i64>,
    ) -> Result<(), String> {
        self.answer().describe_tensor(role, name, datatype, shape)
    }

    fn describe_parameter(
        &mut self,
        tensor: Option<(wit::TensorRole, String)>,
        name: String,
        value: wit::ParameterValue,
    ) -> Result<(), String> {
        self.answer().describe_parameter(tensor, name, value)
    }
}

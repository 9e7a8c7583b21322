//! Answering one request with several responses (streaming endpoints).

use crate::bindings::mlhost::runtime::host;
use crate::{Error, InferenceResponse};

/// Where a streaming model's responses go: to the client through the host, or (natively, for
/// tests) into a list.
#[derive(Debug)]
pub struct Responses {
    collected: Option<Vec<InferenceResponse>>,
}

impl Responses {
    /// Responses that go to the host, each sent as soon as it is given.
    pub(crate) fn to_host() -> Self {
        Responses { collected: None }
    }

    /// Responses kept in a list, to test a model's `predict_stream` without a host.
    pub fn collect() -> Self {
        Responses {
            collected: Some(Vec::new()),
        }
    }

    /// The responses kept by a [`Responses::collect`] sink.
    pub fn collected(self) -> Vec<InferenceResponse> {
        self.collected.unwrap_or_default()
    }

    /// Sends one response. Fails when the client has gone or the model's output limit is
    /// reached: stop producing then.
    pub fn send(&mut self, response: InferenceResponse) -> Result<(), Error> {
        match &mut self.collected {
            Some(list) => {
                list.push(response);
                Ok(())
            }
            None => {
                hand_over(&response)?;
                host::send_response().map_err(Error::Internal)
            }
        }
    }
}

/// Hands a response's outputs and parameters to the host, which checks each against the
/// model's limits as it arrives.
pub(crate) fn hand_over(response: &InferenceResponse) -> Result<(), Error> {
    for output in &response.outputs {
        host::add_output(&output.name, output.datatype, &output.shape, &output.data)
            .map_err(Error::Internal)?;
        for parameter in &output.parameters {
            host::add_output_parameter(Some(&output.name), &parameter.name, &parameter.value)
                .map_err(Error::Internal)?;
        }
    }
    for parameter in &response.parameters {
        host::add_output_parameter(None, &parameter.name, &parameter.value)
            .map_err(Error::Internal)?;
    }
    Ok(())
}

//! Answering one request with several responses (streaming endpoints).

use crate::bindings::mlhost::runtime::host;
use crate::{Error, InferenceResponse};

/// Where a streaming model's responses go: to the client through the host, or (natively, for
/// tests) into a list.
///
/// ```
/// use mlhost_guest::{Error, InferenceResponse, Responses, Tensor};
///
/// /// A `predict_stream` body: one response per token.
/// fn stream_tokens(text: &str, responses: &mut Responses) -> Result<(), Error> {
///     for token in text.split_whitespace() {
///         responses.send(InferenceResponse::new()
///             .output(Tensor::from_bytes_elements("token", &[1], &[token])?))?;
///     }
///     Ok(())
/// }
///
/// let mut responses = Responses::collect();
/// stream_tokens("hello wasm world", &mut responses)?;
/// let sent = responses.collected();
/// assert_eq!(sent.len(), 3);
/// assert_eq!(sent[2].outputs[0].strings()?, vec!["world"]);
/// # Ok::<(), Error>(())
/// ```
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
    ///
    /// ```
    /// # use mlhost_guest::{InferenceResponse, Responses};
    /// let mut responses = Responses::collect();
    /// responses.send(InferenceResponse::new())?;
    /// assert_eq!(responses.collected().len(), 1);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn collect() -> Self {
        Responses {
            collected: Some(Vec::new()),
        }
    }

    /// The responses kept by a [`Responses::collect`] sink, in the order they were sent (empty
    /// for the host's sink, which keeps none).
    ///
    /// ```
    /// # use mlhost_guest::{InferenceResponse, Responses, Tensor};
    /// let mut responses = Responses::collect();
    /// for i in 0..2i64 {
    ///     responses.send(InferenceResponse::new().output(Tensor::from_values("i", &[1], &[i])?))?;
    /// }
    /// let sent = responses.collected();
    /// assert_eq!(sent[1].outputs[0].values::<i64>()?, vec![1]);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn collected(self) -> Vec<InferenceResponse> {
        self.collected.unwrap_or_default()
    }

    /// Sends one response to the client now. Fails when the client has gone or the model's
    /// output limit (`max_output_mb`, which counts every response of the call together) is
    /// reached: stop producing then, and return the error (`?`).
    ///
    /// ```
    /// # use mlhost_guest::{InferenceResponse, Responses, Tensor};
    /// # let mut responses = Responses::collect();
    /// let p = Tensor::from_values("p", &[1], &[0.5f32])?;
    /// responses.send(InferenceResponse::new().output(p))?;
    /// # assert_eq!(responses.collected().len(), 1);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
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

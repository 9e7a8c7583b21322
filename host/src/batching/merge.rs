//! Merging requests into one batch along dimension 0, and splitting the answer back.
//!
//! Pure functions, no I/O: the batcher decides *when* to batch, this module decides *whether*
//! requests can share a batch ([`BatchKey`]) and does the arithmetic.

use crate::codec::{InferenceRequest, ParameterValue, Parameters, TIMEOUT_PARAMETER, Tensor};

/// What requests must agree on to share a batch: input names, datatypes and trailing
/// dimensions, requested outputs, and request parameters (which may change the computation).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchKey {
    inputs: Vec<(String, crate::codec::DataType, Vec<u64>, Parameters)>,
    outputs: Vec<(String, Parameters)>,
    parameters: Parameters,
}

fn sorted(parameters: &Parameters) -> Parameters {
    let mut parameters = parameters.clone();
    parameters.sort_by(|a, b| a.0.cmp(&b.0));
    parameters
}

/// The batch key and row count of a request, or `None` when it cannot be batched (no inputs, a
/// scalar input, or inputs that disagree on their number of rows).
pub(crate) fn batch_key(request: &InferenceRequest) -> Option<(BatchKey, u64)> {
    let rows = *request.inputs.first()?.shape.first()?;
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for input in &request.inputs {
        let (&first, trailing) = input.shape.split_first()?;
        if first != rows {
            return None;
        }
        inputs.push((
            input.name.clone(),
            input.datatype,
            trailing.to_vec(),
            sorted(&input.parameters),
        ));
    }
    inputs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut outputs: Vec<(String, Parameters)> = request
        .outputs
        .iter()
        .map(|output| (output.name.clone(), sorted(&output.parameters)))
        .collect();
    outputs.sort_by(|a, b| a.0.cmp(&b.0));
    // The deadline is per request; it does not change the computation.
    let mut parameters: Parameters = request
        .parameters
        .iter()
        .filter(|(name, _)| name != TIMEOUT_PARAMETER)
        .cloned()
        .collect();
    parameters.sort_by(|a, b| a.0.cmp(&b.0));
    Some((
        BatchKey {
            inputs,
            outputs,
            parameters,
        },
        rows,
    ))
}

/// Concatenates requests that share a [`BatchKey`] into one request along dimension 0.
pub(crate) fn merge(requests: &[&InferenceRequest]) -> InferenceRequest {
    let first = requests[0];
    let inputs = first
        .inputs
        .iter()
        .map(|template| {
            let parts: Vec<&Tensor> = requests
                .iter()
                .map(|request| {
                    request
                        .inputs
                        .iter()
                        .find(|input| input.name == template.name)
                        .expect("requests of one batch have the same inputs")
                })
                .collect();
            let mut shape = template.shape.clone();
            shape[0] = parts.iter().map(|part| part.shape[0]).sum();
            let mut data = Vec::with_capacity(parts.iter().map(|part| part.data.len()).sum());
            for part in &parts {
                data.extend_from_slice(&part.data);
            }
            Tensor {
                name: template.name.clone(),
                datatype: template.datatype,
                shape,
                data,
                parameters: template.parameters.clone(),
            }
        })
        .collect();
    InferenceRequest {
        id: None,
        inputs,
        outputs: first.outputs.clone(),
        parameters: first
            .parameters
            .iter()
            .filter(|(name, _)| name != TIMEOUT_PARAMETER)
            .cloned()
            .collect::<Vec<(String, ParameterValue)>>(),
    }
}

/// Splits the outputs of a batch back by each request's row count. Every output must have as
/// many rows as the batch; otherwise no request gets anyone's rows.
pub(crate) fn split(outputs: &[Tensor], rows: &[u64]) -> Result<Vec<Vec<Tensor>>, String> {
    let total: u64 = rows.iter().sum();
    let mut answers: Vec<Vec<Tensor>> = vec![Vec::with_capacity(outputs.len()); rows.len()];
    for output in outputs {
        let Some((&output_rows, trailing)) = output.shape.split_first() else {
            return Err(format!(
                "the runtime returned the scalar output '{}' for a batch",
                output.name
            ));
        };
        if output_rows != total {
            return Err(format!(
                "the runtime returned {output_rows} rows of output '{}' for a batch of {total} rows",
                output.name
            ));
        }
        let row_elements: u64 = trailing.iter().product();
        let mut offset = 0usize;
        let mut elements = output.bytes_elements();
        for (answer, &count) in answers.iter_mut().zip(rows) {
            let length = match output.datatype.element_size() {
                Some(size) => (count * row_elements) as usize * size,
                None => {
                    let mut length = 0;
                    for _ in 0..count * row_elements {
                        let element = elements.next().and_then(Result::ok).ok_or_else(|| {
                            format!("output '{}' has malformed BYTES data", output.name)
                        })?;
                        length += 4 + element.len();
                    }
                    length
                }
            };
            let data = output
                .data
                .get(offset..offset + length)
                .ok_or_else(|| format!("output '{}' is shorter than its shape", output.name))?
                .to_vec();
            offset += length;
            let mut shape = output.shape.clone();
            shape[0] = count;
            answer.push(Tensor {
                name: output.name.clone(),
                datatype: output.datatype,
                shape,
                data,
                parameters: output.parameters.clone(),
            });
        }
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DataType, RequestedOutput};
    use proptest::prelude::*;

    fn request(inputs: Vec<Tensor>, outputs: &[&str]) -> InferenceRequest {
        InferenceRequest {
            id: None,
            inputs,
            outputs: outputs
                .iter()
                .map(|name| RequestedOutput {
                    name: name.to_string(),
                    parameters: vec![],
                })
                .collect(),
            parameters: vec![],
        }
    }

    fn bytes_data(strings: &[String]) -> Vec<u8> {
        strings
            .iter()
            .flat_map(|s| [&(s.len() as u32).to_le_bytes()[..], s.as_bytes()].concat())
            .collect()
    }

    #[test]
    fn keys_separate_what_cannot_share_a_batch() {
        let tensor = |name: &str, datatype, shape: Vec<u64>| Tensor {
            name: name.into(),
            datatype,
            data: vec![0; (shape.iter().product::<u64>() * 4) as usize],
            shape,
            parameters: vec![],
        };
        let a = request(vec![tensor("x", DataType::Fp32, vec![2, 3])], &[]);
        let b = request(vec![tensor("x", DataType::Fp32, vec![5, 3])], &[]);
        assert_eq!(batch_key(&a).unwrap().0, batch_key(&b).unwrap().0);
        assert_eq!(batch_key(&b).unwrap().1, 5);
        for other in [
            request(vec![tensor("x", DataType::Fp32, vec![2, 4])], &[]),
            request(vec![tensor("x", DataType::Int32, vec![2, 3])], &[]),
            request(vec![tensor("y", DataType::Fp32, vec![2, 3])], &[]),
            request(vec![tensor("x", DataType::Fp32, vec![2, 3])], &["predict"]),
        ] {
            assert_ne!(batch_key(&a).unwrap().0, batch_key(&other).unwrap().0);
        }
        assert!(batch_key(&request(vec![tensor("x", DataType::Fp32, vec![])], &[])).is_none());
        let ragged = request(
            vec![
                tensor("x", DataType::Fp32, vec![2, 3]),
                tensor("z", DataType::Fp32, vec![3]),
            ],
            &[],
        );
        assert!(batch_key(&ragged).is_none());
    }

    #[test]
    fn a_wrong_row_count_fails_the_whole_batch() {
        let output = Tensor {
            name: "y".into(),
            datatype: DataType::Fp32,
            shape: vec![3],
            data: vec![0; 12],
            parameters: vec![],
        };
        assert!(
            split(&[output], &[2, 2])
                .unwrap_err()
                .contains("3 rows of output 'y' for a batch of 4")
        );
    }

    /// One request's worth of data: rows × width elements of one datatype.
    fn part(datatype: DataType, rows: u64, width: u64, seed: u64) -> Tensor {
        let count = (rows * width) as usize;
        let data = match datatype {
            DataType::Bytes => bytes_data(
                &(0..count)
                    .map(|i| "s".repeat((i + seed as usize) % 5))
                    .collect::<Vec<_>>(),
            ),
            _ => (0..count * datatype.element_size().unwrap())
                .map(|i| (i as u64 * 31 + seed) as u8)
                .collect(),
        };
        Tensor {
            name: "x".into(),
            datatype,
            shape: vec![rows, width],
            data,
            parameters: vec![],
        }
    }

    proptest! {
        /// split(merge(x)) hands each request exactly its own rows, for any row counts, widths and
        /// datatypes (BYTES included), as an identity runtime would return them.
        #[test]
        fn split_of_merge_gives_each_request_its_own_rows(
            rows in proptest::collection::vec(0u64..6, 1..8),
            width in 1u64..4,
            datatype in prop_oneof![Just(DataType::Fp32), Just(DataType::Int8), Just(DataType::Fp64), Just(DataType::Bytes), Just(DataType::Bool)],
        ) {
            let requests: Vec<InferenceRequest> = rows
                .iter()
                .enumerate()
                .map(|(seed, &count)| request(vec![part(datatype, count, width, seed as u64)], &["x"]))
                .collect();
            let refs: Vec<&InferenceRequest> = requests.iter().collect();
            let merged = merge(&refs);
            prop_assert_eq!(merged.inputs[0].shape[0], rows.iter().sum::<u64>());
            merged.inputs[0].validate().unwrap();
            // An identity runtime: the output is the input.
            let answers = split(&merged.inputs, &rows).unwrap();
            for (answer, request) in answers.iter().zip(&requests) {
                prop_assert_eq!(&answer[0], &request.inputs[0]);
            }
        }
    }
}

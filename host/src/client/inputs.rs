//! Builds the request `mlhost infer` sends: from a JSON file, `.npy` files or values given on the
//! command line.

use super::npy::read_npy;
use crate::codec::json::decode_request;
use crate::codec::{DataType, InferenceRequest, RequestedOutput, Tensor};
use anyhow::{Context, bail};
use std::path::Path;

/// The most elements one tensor may hold on the client's side (2^31; servers set their own
/// limit, mlhost's default is 2^28).
pub(crate) const MAX_ELEMENTS: u64 = 1 << 31;

/// Where a request's inputs come from.
#[derive(Debug, Default)]
pub(crate) struct RequestSources<'a> {
    /// A JSON request (the protocol's body); `-` reads standard input.
    pub json_file: Option<&'a Path>,
    /// `NAME=FILE.npy` pairs.
    pub npy: &'a [String],
    /// `NAME[:DATATYPE][:SHAPE]=VALUES` specs.
    pub tensors: &'a [String],
    /// Outputs to ask for.
    pub outputs: &'a [String],
    /// The request's id.
    pub id: Option<&'a str>,
}

/// Builds the request; every input is checked against its shape and datatype.
pub(crate) fn build_request(sources: &RequestSources<'_>) -> anyhow::Result<InferenceRequest> {
    let mut request = match sources.json_file {
        Some(path) => {
            let body = if path == Path::new("-") {
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)
                    .context("cannot read the request from standard input")?;
                body
            } else {
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
            };
            decode_request(&body, &[], MAX_ELEMENTS)
                .with_context(|| format!("{} is not a valid inference request", path.display()))?
        }
        None => InferenceRequest::default(),
    };
    for spec in sources.npy {
        let (name, file) = spec
            .split_once('=')
            .with_context(|| format!("--npy '{spec}': write NAME=FILE.npy"))?;
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {file}"))?;
        let tensor = read_npy(&bytes, name, MAX_ELEMENTS)
            .map_err(|error| anyhow::anyhow!("{file}: {error}"))?;
        request.inputs.push(tensor);
    }
    for spec in sources.tensors {
        request.inputs.push(parse_tensor(spec)?);
    }
    if request.inputs.is_empty() {
        bail!("no inputs: give a request file (-i request.json), --tensor or --npy");
    }
    for (index, input) in request.inputs.iter().enumerate() {
        if request.inputs[..index]
            .iter()
            .any(|other| other.name == input.name)
        {
            bail!("the input '{}' is given twice", input.name);
        }
    }
    request
        .outputs
        .extend(sources.outputs.iter().map(|name| RequestedOutput {
            name: name.clone(),
            parameters: Vec::new(),
        }));
    if let Some(id) = sources.id {
        request.id = Some(id.to_string());
    }
    Ok(request)
}

/// Parses `NAME[:DATATYPE][:SHAPE]=VALUES`, e.g. `x=1,2,3`, `x:FP32:2x2=1,2,3,4` or
/// `text:BYTES=hello,world`. Numbers default to FP64, `true`/`false` to BOOL, anything else to
/// BYTES; the shape defaults to the number of values.
pub(crate) fn parse_tensor(spec: &str) -> anyhow::Result<Tensor> {
    let (head, values) = spec.split_once('=').with_context(|| {
        format!("--tensor '{spec}': write NAME[:DATATYPE][:SHAPE]=VALUES, e.g. x:FP32:2x2=1,2,3,4")
    })?;
    let mut parts = head.split(':');
    let name = parts.next().unwrap_or_default();
    if name.is_empty() {
        bail!("--tensor '{spec}': the tensor has no name");
    }
    let mut datatype = None;
    let mut shape = None;
    for part in parts {
        if let Ok(parsed) = part.to_ascii_uppercase().parse::<DataType>() {
            datatype = Some(parsed);
        } else {
            shape = Some(
                part.split(['x', 'X', ','])
                    .map(|dim| dim.trim().parse::<i64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "--tensor '{spec}': '{part}' is neither a datatype (FP32, INT64, \
                             BYTES, ...) nor a shape such as 2x3"
                        )
                    })?,
            );
        }
    }
    let values: Vec<&str> = if values.is_empty() {
        Vec::new()
    } else {
        values.split(',').map(str::trim).collect()
    };
    let datatype = datatype.unwrap_or_else(|| guess_datatype(&values));
    let data: Vec<serde_json::Value> = values
        .iter()
        .map(|value| match datatype {
            DataType::Bytes => Ok(serde_json::Value::String(value.to_string())),
            _ => json_number(value)
                .with_context(|| format!("--tensor '{spec}': '{value}' is not a {datatype}")),
        })
        .collect::<anyhow::Result<_>>()?;
    let shape = shape.unwrap_or_else(|| vec![data.len() as i64]);
    let body = serde_json::json!({
        "inputs": [{"name": name, "datatype": datatype.as_str(), "shape": shape, "data": data}]
    });
    let mut request = decode_request(body.to_string().as_bytes(), &[], MAX_ELEMENTS)
        .map_err(|error| anyhow::anyhow!("--tensor '{spec}': {error}"))?;
    Ok(request.inputs.remove(0))
}

/// A number (`3`, `-2`, `.5`, `1e3`) or boolean as JSON; the JSON decoder then checks it fits
/// the datatype. NaN and infinities have no JSON form.
fn json_number(value: &str) -> Option<serde_json::Value> {
    match value {
        "true" => Some(true.into()),
        "false" => Some(false.into()),
        _ => value
            .parse::<i64>()
            .map(serde_json::Value::from)
            .or_else(|_| value.parse::<u64>().map(serde_json::Value::from))
            .ok()
            .or_else(|| {
                let float = value.parse::<f64>().ok()?;
                serde_json::Number::from_f64(float).map(serde_json::Value::Number)
            }),
    }
}

fn guess_datatype(values: &[&str]) -> DataType {
    if values.iter().all(|value| value.parse::<f64>().is_ok()) {
        DataType::Fp64
    } else if values
        .iter()
        .all(|value| matches!(*value, "true" | "false"))
    {
        DataType::Bool
    } else {
        DataType::Bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_from_the_command_line() {
        let x = parse_tensor("x:FP32:2x2=1,2,3,4.5").unwrap();
        assert_eq!((x.datatype, x.shape.clone()), (DataType::Fp32, vec![2, 2]));
        assert_eq!(&x.data[12..], &4.5f32.to_le_bytes());
        let guessed = parse_tensor("x=1,2.5").unwrap();
        assert_eq!((guessed.datatype, guessed.shape), (DataType::Fp64, vec![2]));
        let words = parse_tensor("t=hello,world").unwrap();
        assert_eq!(words.datatype, DataType::Bytes);
        let loose = parse_tensor("x=.5,+1,5.").unwrap();
        let values: Vec<f64> = loose
            .data
            .chunks(8)
            .map(|chunk| f64::from_le_bytes(chunk.try_into().unwrap()))
            .collect();
        assert_eq!(values, vec![0.5, 1.0, 5.0]);
        let flags = parse_tensor("b:1x2=true,false").unwrap();
        assert_eq!((flags.datatype, flags.data), (DataType::Bool, vec![1, 0]));
    }

    #[test]
    fn bad_tensor_specs_say_what_is_wrong() {
        let error = |spec: &str| parse_tensor(spec).unwrap_err().to_string();
        assert!(error("x").contains("NAME[:DATATYPE]"));
        assert!(error("x:FP32:2y2=1").contains("neither a datatype"));
        assert!(error("x:INT8=1,300").contains("x"));
        assert!(error("x:2x2=1,2,3").contains("x"));
        assert!(error("x:INT32=a").contains("not a INT32"));
        assert!(error("x:FP64=NaN").contains("not a FP64"));
    }

    #[test]
    fn a_request_needs_inputs_with_distinct_names() {
        let none = build_request(&RequestSources::default()).unwrap_err();
        assert!(none.to_string().contains("no inputs"));
        let twice = ["x=1".to_string(), "x=2".to_string()];
        let error = build_request(&RequestSources {
            tensors: &twice,
            ..Default::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains("twice"));
    }
}

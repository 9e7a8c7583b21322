//! A pre-processing runtime, for the pipeline tests (docs/pipelines.md): text rows in, the
//! feature matrix a trees or ONNX model takes out.
//!
//! - input `rows`: BYTES `[N]`, each row its features as comma-separated numbers;
//! - output `features`: FP32 `[N, F]`, each feature standardized as `(x - mean) / scale`, with
//!   `parameters.extra.mean` and `parameters.extra.scale` (F numbers each; F from them).
//!
//! A row that does not parse is an invalid input (400). A row that is exactly `trap` makes the
//! runtime trap (a panic: `unreachable` in wasm), so that tests can watch a step fail.

use mlhost_guest::{
    Datatype, Error, InferenceRequest, InferenceResponse, Model, ModelMetadata, ModelSettings,
    Tensor, TensorMetadata, export_model,
};

struct Standardize {
    mean: Vec<f32>,
    scale: Vec<f32>,
}

/// `extra.<field>`: a list of numbers.
fn numbers(settings: &ModelSettings, field: &str) -> Result<Vec<f32>, Error> {
    let extra = settings.extra_settings()?;
    let list = extra
        .get(field)
        .and_then(|value| value.as_array())
        .ok_or_else(|| {
            Error::invalid_model(format!("parameters.extra.{field}: a list of numbers"))
        })?;
    list.iter()
        .map(|value| value.as_f64().map(|number| number as f32))
        .collect::<Option<Vec<f32>>>()
        .ok_or_else(|| Error::invalid_model(format!("parameters.extra.{field}: numbers only")))
}

impl Model for Standardize {
    fn load(settings: ModelSettings) -> Result<Self, Error> {
        let (mean, scale) = (numbers(&settings, "mean")?, numbers(&settings, "scale")?);
        if mean.is_empty() || mean.len() != scale.len() || scale.contains(&0.0) {
            return Err(Error::invalid_model(
                "parameters.extra: `mean` and `scale` need as many numbers, none of the scales 0",
            ));
        }
        Ok(Standardize { mean, scale })
    }

    fn metadata(&self) -> ModelMetadata {
        let features = self.mean.len() as i64;
        ModelMetadata::new("pipeline-pre")
            .input(TensorMetadata::new("rows", Datatype::Bytes, &[-1]))
            .output(TensorMetadata::new(
                "features",
                Datatype::Fp32,
                &[-1, features],
            ))
    }

    fn predict(&self, request: InferenceRequest) -> Result<InferenceResponse, Error> {
        let rows = request.input("rows")?.strings()?;
        let mut features = Vec::with_capacity(rows.len() * self.mean.len());
        for (index, row) in rows.iter().enumerate() {
            if *row == "trap" {
                panic!("row {index} asked the runtime to trap");
            }
            let values: Vec<&str> = row.split(',').map(str::trim).collect();
            if values.len() != self.mean.len() {
                return Err(Error::invalid_input(format!(
                    "row {index} has {} features, the model takes {}",
                    values.len(),
                    self.mean.len()
                )));
            }
            for (column, value) in values.iter().enumerate() {
                let value: f32 = value.parse().map_err(|_| {
                    Error::invalid_input(format!("row {index}: '{value}' is not a number"))
                })?;
                features.push((value - self.mean[column]) / self.scale[column]);
            }
        }
        let shape = [rows.len() as u64, self.mean.len() as u64];
        let features = Tensor::from_values("features", &shape, &features)?;
        Ok(InferenceResponse::new().output(features))
    }
}

export_model!(Standardize);

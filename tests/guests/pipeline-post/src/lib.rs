//! A post-processing runtime, for the pipeline tests (docs/pipelines.md): a classifier's
//! probabilities in, the most likely class's name and its probability out.
//!
//! - input `scores`: FP32 `[N, C]`, C the number of names in `parameters.extra.classes`;
//! - outputs `label`: BYTES `[N]`, the name of each row's most likely class (the first on a
//!   tie), and `confidence`: FP32 `[N, 1]`, its probability.

use mlhost_guest::{
    Datatype, Error, InferenceRequest, InferenceResponse, Model, ModelMetadata, ModelSettings,
    Tensor, TensorMetadata, export_model,
};

struct Label {
    classes: Vec<String>,
}

impl Model for Label {
    fn load(settings: ModelSettings) -> Result<Self, Error> {
        let classes: Vec<String> = settings
            .extra_settings()?
            .get("classes")
            .and_then(|classes| classes.as_array().cloned())
            .ok_or_else(|| Error::invalid_model("parameters.extra.classes: a list of names"))?
            .iter()
            .map(|name| name.as_str().unwrap_or_default().to_string())
            .collect();
        if classes.is_empty() {
            return Err(Error::invalid_model("parameters.extra.classes is empty"));
        }
        Ok(Label { classes })
    }

    fn metadata(&self) -> ModelMetadata {
        let classes = self.classes.len() as i64;
        ModelMetadata::new("pipeline-post")
            .input(TensorMetadata::new(
                "scores",
                Datatype::Fp32,
                &[-1, classes],
            ))
            .output(TensorMetadata::new("label", Datatype::Bytes, &[-1]))
            .output(TensorMetadata::new("confidence", Datatype::Fp32, &[-1, 1]))
    }

    fn predict(&self, request: InferenceRequest) -> Result<InferenceResponse, Error> {
        let scores = request.input("scores")?;
        scores.expect_rank(2)?;
        if scores.row_len() != self.classes.len() {
            return Err(Error::invalid_input(format!(
                "scores has {} columns, one per class of {:?} expected",
                scores.row_len(),
                self.classes
            )));
        }
        let values = scores.to_f32_vec()?;
        let mut labels = Vec::with_capacity(scores.rows());
        let mut confidence = Vec::with_capacity(scores.rows());
        for row in values.chunks(self.classes.len()) {
            let (best, probability) =
                row.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (index, &p)| {
                        if p > best.1 { (index, p) } else { best }
                    });
            labels.push(self.classes[best].as_str());
            confidence.push(probability);
        }
        let rows = labels.len() as u64;
        Ok(InferenceResponse::new()
            .output(Tensor::from_bytes_elements("label", &[rows], &labels)?)
            .output(Tensor::from_values("confidence", &[rows, 1], &confidence)?))
    }
}

export_model!(Label);

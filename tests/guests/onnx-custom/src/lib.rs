//! A custom runtime around a native ONNX graph, for tests only: what the guest SDK's `onnx`
//! module is for. It serves a scikit-learn classifier exported to ONNX (`model.onnx`: input `X`
//! FP32 `[N, F]`, outputs `label` INT64 and `probabilities`) with processing of its own:
//!
//! - before the graph: it takes `X` as FP64 (or FP32) and converts it to the graph's FP32;
//! - after: it answers `class`, the label's name from `parameters.extra.classes` (BYTES `[N]`),
//!   and the graph's `probabilities` unchanged.
//!
//! Without the native backend it does not load, and says why.

use mlhost_guest::onnx::{self, Session};
use mlhost_guest::{
    Datatype, Error, InferenceRequest, InferenceResponse, Model, ModelMetadata, ModelSettings,
    Parameter, Tensor, TensorMetadata, export_model,
};

struct Classifier {
    session: Session,
    classes: Vec<String>,
    features: i64,
}

impl Model for Classifier {
    fn load(settings: ModelSettings) -> Result<Self, Error> {
        onnx::available().map_err(Error::invalid_model)?;
        let session = Session::open(&format!("{}/model.onnx", settings.uri))?;
        let classes = settings
            .extra_settings()?
            .get("classes")
            .and_then(|classes| classes.as_array().cloned())
            .ok_or_else(|| Error::invalid_model("parameters.extra.classes: a list of names"))?
            .iter()
            .map(|name| name.as_str().unwrap_or_default().to_string())
            .collect();
        let features = session
            .inputs()
            .first()
            .and_then(|input| input.shape.get(1).copied())
            .ok_or_else(|| Error::invalid_model("the graph takes no input X [N, F]"))?;
        Ok(Classifier {
            session,
            classes,
            features,
        })
    }

    fn metadata(&self) -> ModelMetadata {
        let mut metadata = ModelMetadata::new("custom-onnx")
            .input(TensorMetadata::new(
                "X",
                Datatype::Fp64,
                &[-1, self.features],
            ))
            .output(TensorMetadata::new("class", Datatype::Bytes, &[-1]))
            .output(TensorMetadata::new(
                "probabilities",
                Datatype::Fp32,
                &[-1, self.classes.len() as i64],
            ));
        metadata
            .parameters
            .push(Parameter::string("backend", "native"));
        metadata
    }

    fn predict(&self, request: InferenceRequest) -> Result<InferenceResponse, Error> {
        let x = request.input("X")?;
        let features = Tensor::from_values("X", &x.shape, &x.to_f32_vec()?)?;
        let mut outputs = self.session.run(
            &[features],
            &["label".to_string(), "probabilities".to_string()],
        )?;
        let probabilities = outputs.pop().expect("two outputs asked for");
        let labels: Vec<i64> = outputs.pop().expect("two outputs asked for").values()?;
        let names = labels
            .iter()
            .map(|&label| {
                usize::try_from(label)
                    .ok()
                    .and_then(|index| self.classes.get(index))
                    .ok_or_else(|| Error::internal(format!("no class name for label {label}")))
            })
            .collect::<Result<Vec<&String>, Error>>()?;
        let class = Tensor::from_bytes_elements("class", &[names.len() as u64], &names)?;
        Ok(InferenceResponse::new().output(class).output(probabilities))
    }
}

export_model!(Classifier);

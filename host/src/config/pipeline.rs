//! The `pipeline` of a model-settings.json: steps, each a model of the repository, whose
//! outputs feed the inputs of later steps, and what the pipeline answers (docs/pipelines.md).
//!
//! Tensors are named by references: `inputs.NAME` (an input of the pipeline's request), `inputs`
//! (all of them), `STEP.outputs.NAME` (an output of step `STEP`), `STEP.outputs` or `STEP` (all of
//! them). The graph they make is checked in [`crate::pipeline`].

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A pipeline's declaration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct PipelineSettings {
    /// The steps, in any order: the references decide which runs after which.
    pub steps: Vec<StepSettings>,
    /// What the pipeline answers (default: every output of its last step).
    #[serde(default)]
    pub outputs: Option<TensorSources>,
}

/// One step: a model of the repository and where its inputs come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepSettings {
    /// The step's name, which references use (`STEP.outputs.NAME`).
    pub name: String,
    /// The model the step runs (default: the step's name).
    #[serde(default)]
    pub model: Option<String>,
    /// The model's version (default: its default version).
    #[serde(default)]
    pub version: Option<String>,
    /// The step's inputs (default: the previous step's outputs; the pipeline's inputs for the
    /// first step).
    #[serde(default)]
    pub inputs: Option<TensorSources>,
}

/// Where tensors come from: a list of references (each tensor keeps its name), or an object
/// naming each tensor (`{"input-0": "pre.outputs.features"}`), in the order written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TensorSources {
    List(Vec<String>),
    Named(Vec<(String, String)>),
}

impl Serialize for TensorSources {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TensorSources::List(references) => references.serialize(serializer),
            TensorSources::Named(pairs) => serializer.collect_map(pairs.iter().cloned()),
        }
    }
}

impl<'de> Deserialize<'de> for TensorSources {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SourcesVisitor)
    }
}

/// Reads a list of references, or an object of names to references keeping its order.
struct SourcesVisitor;

impl<'de> Visitor<'de> for SourcesVisitor {
    type Value = TensorSources;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a list of tensor references, or an object of names to references")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut references = Vec::new();
        while let Some(reference) = seq.next_element::<String>()? {
            references.push(reference);
        }
        Ok(TensorSources::List(references))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        while let Some((name, reference)) = map.next_entry::<String, String>()? {
            if pairs.iter().any(|(known, _)| *known == name) {
                return Err(serde::de::Error::custom(format!("`{name}` is named twice")));
            }
            pairs.push((name, reference));
        }
        Ok(TensorSources::Named(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sources_read_as_a_list_or_as_names_in_their_order() {
        let list: TensorSources =
            serde_json::from_value(json!(["inputs", "pre.outputs.x"])).unwrap();
        assert_eq!(
            list,
            TensorSources::List(vec!["inputs".into(), "pre.outputs.x".into()])
        );
        let text = r#"{"z": "a.outputs.z", "b": "inputs.b"}"#;
        let named: TensorSources = serde_json::from_str(text).unwrap();
        assert_eq!(
            named,
            TensorSources::Named(vec![
                ("z".into(), "a.outputs.z".into()),
                ("b".into(), "inputs.b".into())
            ])
        );
        assert_eq!(
            serde_json::to_string(&named).unwrap(),
            text.replace(' ', "")
        );
        let twice = serde_json::from_str::<TensorSources>(r#"{"a": "x", "a": "y"}"#);
        assert!(twice.unwrap_err().to_string().contains("named twice"));
        assert!(serde_json::from_value::<TensorSources>(json!(3)).is_err());
    }
}

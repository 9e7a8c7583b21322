use super::*;
use crate::codec::{DataType, ModelMetadata, TensorMetadata};
use serde_json::json;

fn pipeline(settings: serde_json::Value) -> Result<Pipeline, String> {
    let settings: PipelineSettings = serde_json::from_value(settings).unwrap();
    Pipeline::from_settings("p", &settings)
}

fn output(step: usize, name: &str) -> Source {
    Source::Output {
        step,
        name: name.to_string(),
    }
}

#[test]
fn a_chain_takes_each_step_after_the_previous_one_by_default() {
    let chain = pipeline(
        json!({"steps": [{"name": "pre"}, {"name": "model", "model": "xgb"},
                                           {"name": "post"}]}),
    )
    .unwrap();
    let sources: Vec<&Source> = chain.steps.iter().map(|s| &s.inputs[0].source).collect();
    assert_eq!(
        sources,
        [
            &Source::AllInputs,
            &Source::AllOutputs(0),
            &Source::AllOutputs(1)
        ]
    );
    assert_eq!(chain.steps[1].model, "xgb");
    assert_eq!(chain.steps[2].after, [1]);
    assert_eq!(chain.outputs[0].source, Source::AllOutputs(2));
    // Everything of each step is taken: each model answers its default outputs.
    assert!(chain.steps.iter().all(|step| step.requested.is_none()));
}

#[test]
fn references_name_tensors_and_decide_what_each_model_is_asked_for() {
    let graph = pipeline(json!({
        "steps": [
            {"name": "pre", "inputs": ["inputs.text"]},
            {"name": "a", "model": "xgb", "inputs": {"input-0": "pre.outputs.features"}},
            {"name": "b", "model": "lgbm", "inputs": {"input-0": "pre.outputs.features"}},
            {"name": "post", "inputs": {"left": "a.outputs.predict_proba", "right": "b.outputs.predict"}}
        ],
        "outputs": {"label": "post.outputs.label", "raw": "a.outputs.predict_proba"}
    }))
    .unwrap();
    assert_eq!(
        graph.steps[0].inputs[0].source,
        Source::Input("text".into())
    );
    assert_eq!(graph.steps[1].inputs[0].name.as_deref(), Some("input-0"));
    assert_eq!(graph.steps[3].after, [1, 2]);
    assert_eq!(graph.steps[0].requested, Some(vec!["features".to_string()]));
    assert_eq!(
        graph.steps[1].requested,
        Some(vec!["predict_proba".to_string()])
    );
    assert_eq!(graph.steps[2].requested, Some(vec!["predict".to_string()]));
    assert_eq!(graph.outputs[1].source, output(1, "predict_proba"));
    // `STEP` and `STEP.outputs` are every output; a name may hold dots.
    let whole = pipeline(
        json!({"steps": [{"name": "a"}, {"name": "b", "inputs": ["a.outputs", "a"]}],
                               "outputs": ["b.outputs.x.1"]}),
    )
    .unwrap();
    assert_eq!(whole.steps[1].inputs[0].source, Source::AllOutputs(0));
    assert_eq!(whole.steps[1].inputs[1].source, Source::AllOutputs(0));
    assert_eq!(whole.outputs[0].source, output(1, "x.1"));
}

#[test]
fn bad_graphs_are_refused_saying_why() {
    let cases = [
        (json!({"steps": []}), "1 to 64 steps"),
        (json!({"steps": [{"name": "a.b"}]}), "not usable"),
        (json!({"steps": [{"name": "inputs"}]}), "not usable"),
        (
            json!({"steps": [{"name": "a"}, {"name": "a"}]}),
            "two steps are named 'a'",
        ),
        (
            json!({"steps": [{"name": "p"}]}),
            "runs the pipeline 'p' itself",
        ),
        (json!({"steps": [{"name": "a", "model": "p"}]}), "itself"),
        (
            json!({"steps": [{"name": "a", "inputs": ["nope.outputs.x"]}]}),
            "no step is named 'nope'",
        ),
        (
            json!({"steps": [{"name": "a", "inputs": ["inputs."]}]}),
            "no tensor named",
        ),
        (
            json!({"steps": [{"name": "a"}, {"name": "b", "inputs": ["a.x"]}]}),
            "a.outputs.NAME",
        ),
        (
            json!({"steps": [{"name": "a", "inputs": {"x": "inputs"}}]}),
            "names several tensors",
        ),
        (
            json!({"steps": [{"name": "a", "inputs": ["b"]}, {"name": "b", "inputs": ["a"]}]}),
            "cycle",
        ),
        (
            json!({"steps": [{"name": "a", "inputs": ["a.outputs.y"]}]}),
            "cycle",
        ),
        (
            json!({"steps": [{"name": "a"}], "outputs": ["z"]}),
            "outputs: `z`",
        ),
    ];
    for (settings, expected) in cases {
        let error = pipeline(settings.clone()).unwrap_err();
        assert!(error.contains(expected), "{settings}: {error}");
    }
}

fn tensor(name: &str, datatype: DataType, shape: &[i64]) -> TensorMetadata {
    TensorMetadata {
        name: name.to_string(),
        datatype,
        shape: shape.to_vec(),
        parameters: Vec::new(),
    }
}

#[test]
fn metadata_comes_from_the_steps_models() {
    let graph = pipeline(json!({
        "steps": [
            {"name": "pre", "inputs": ["inputs.text"]},
            {"name": "xgb", "inputs": {"input-0": "pre.outputs.features"}},
            {"name": "post", "inputs": {"scores": "xgb.outputs.predict_proba"}}
        ],
        "outputs": ["post.outputs.label", "xgb.outputs.predict_proba"]
    }))
    .unwrap();
    let pre = ModelMetadata {
        inputs: vec![tensor("rows", DataType::Bytes, &[-1])],
        outputs: vec![tensor("features", DataType::Fp32, &[-1, 5])],
        ..Default::default()
    };
    let xgb = ModelMetadata {
        inputs: vec![tensor("input-0", DataType::Fp32, &[-1, 5])],
        outputs: vec![
            tensor("predict", DataType::Int64, &[-1, 1]),
            tensor("predict_proba", DataType::Fp32, &[-1, 2]),
        ],
        ..Default::default()
    };
    let post = ModelMetadata {
        inputs: vec![tensor("scores", DataType::Fp32, &[-1, 2])],
        outputs: vec![tensor("label", DataType::Bytes, &[-1])],
        ..Default::default()
    };
    let metadata = metadata::derive(&graph, &[&pre, &xgb, &post]).unwrap();
    assert_eq!(metadata.platform, "pipeline");
    assert_eq!(metadata.inputs, [tensor("text", DataType::Bytes, &[-1])]);
    assert_eq!(
        metadata.outputs,
        [
            tensor("label", DataType::Bytes, &[-1]),
            tensor("predict_proba", DataType::Fp32, &[-1, 2])
        ]
    );
    // An output the model does not answer is refused, naming the step and what it answers.
    let wrong = ModelMetadata {
        outputs: vec![tensor("other", DataType::Fp32, &[-1])],
        ..pre.clone()
    };
    let error = metadata::derive(&graph, &[&wrong, &xgb, &post]).unwrap_err();
    assert!(
        error.contains("step 'pre' (model 'pre') answers no output 'features'"),
        "{error}"
    );
    // An input the step's model does not take (of several) is refused.
    let two = ModelMetadata {
        inputs: vec![
            tensor("a", DataType::Fp32, &[-1]),
            tensor("b", DataType::Fp32, &[-1]),
        ],
        ..post.clone()
    };
    let error = metadata::derive(&graph, &[&pre, &xgb, &two]).unwrap_err();
    assert!(
        error.contains("step 'post' takes no input 'scores'"),
        "{error}"
    );
}

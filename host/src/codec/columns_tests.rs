use super::*;
use crate::codec::ParameterValue;

fn matrix(name: &str, datatype: DataType, features: i64, names: Option<&str>) -> TensorMetadata {
    TensorMetadata {
        name: name.into(),
        datatype,
        shape: vec![-1, features],
        parameters: names
            .map(|names| {
                vec![(
                    FEATURE_NAMES.to_string(),
                    ParameterValue::String(names.into()),
                )]
            })
            .unwrap_or_default(),
    }
}

fn column<T: Copy>(
    name: &str,
    datatype: DataType,
    values: &[T],
    bytes: fn(T) -> Vec<u8>,
) -> Tensor {
    Tensor {
        name: name.into(),
        datatype,
        shape: vec![values.len() as u64, 1],
        data: values.iter().flat_map(|&v| bytes(v)).collect(),
        parameters: vec![],
    }
}

fn f64s(name: &str, values: &[f64]) -> Tensor {
    column(name, DataType::Fp64, values, |v| v.to_le_bytes().to_vec())
}

fn i64s(name: &str, values: &[i64]) -> Tensor {
    column(name, DataType::Int64, values, |v| v.to_le_bytes().to_vec())
}

fn bools(name: &str, values: &[bool]) -> Tensor {
    column(name, DataType::Bool, values, |v| vec![u8::from(v)])
}

fn strings(name: &str, values: &[&str]) -> Tensor {
    column(name, DataType::Bytes, values, |v| {
        [&(v.len() as u32).to_le_bytes()[..], v.as_bytes()].concat()
    })
}

fn pd(inputs: Vec<Tensor>) -> InferenceRequest {
    InferenceRequest {
        inputs,
        parameters: vec![(
            content_type::CONTENT_TYPE.into(),
            ParameterValue::String("pd".into()),
        )],
        ..InferenceRequest::default()
    }
}

fn f32s_of(tensor: &Tensor) -> Vec<f32> {
    tensor
        .data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn columns_are_put_in_the_models_order_and_cast_to_its_datatype() {
    let runtime = [matrix(
        "input-0",
        DataType::Fp32,
        3,
        Some(r#"["a", "b", "c"]"#),
    )];
    let layout = ColumnLayout::of(&runtime, &[]).unwrap();
    assert_eq!(layout.problem(), None);
    let big = (1i64 << 60) + (1 << 36) + 1;
    let mut request = pd(vec![
        bools("c", &[true, false]),
        i64s("a", &[big, -3]),
        f64s("b", &[0.1, f64::NAN]),
    ]);
    assert!(layout.applies(&request));
    layout.assemble(&mut request, "m").unwrap();
    let [input] = request.inputs.as_slice() else {
        panic!("one matrix");
    };
    assert_eq!(
        (input.name.as_str(), input.datatype, input.shape.as_slice()),
        ("input-0", DataType::Fp32, &[2u64, 3][..])
    );
    let values = f32s_of(input);
    // Each value rounded once from its own datatype, as XGBoost reads a DataFrame.
    assert_eq!(values[0], big as f32);
    assert_eq!(&values[1..4], &[0.1f64 as f32, 1.0, -3.0]);
    assert!(values[4].is_nan());
    assert_eq!(values[5], 0.0);
    assert!(request.parameters.is_empty(), "the pd content type goes");
}

#[test]
fn missing_and_unknown_columns_are_named() {
    let runtime = [matrix(
        "input-0",
        DataType::Fp64,
        3,
        Some(r#"["a", "b", "c"]"#),
    )];
    let layout = ColumnLayout::of(&runtime, &[]).unwrap();
    let mut request = pd(vec![
        f64s("a", &[1.0]),
        f64s("x", &[1.0]),
        f64s("y", &[1.0]),
    ]);
    let error = layout.assemble(&mut request, "m").unwrap_err();
    assert_eq!(
        error,
        "missing column(s) 'b', 'c' and unknown column(s) 'x', 'y' for model 'm'; it takes \
         the columns 'a', 'b', 'c'"
    );
    let mut request = pd(vec![f64s("a", &[1.0]), f64s("b", &[1.0])]);
    let error = layout.assemble(&mut request, "m").unwrap_err();
    assert!(
        error.starts_with("missing column(s) 'c' for model 'm'"),
        "{error}"
    );
}

#[test]
fn without_names_columns_are_taken_in_order_and_counted() {
    let runtime = [matrix("float_input", DataType::Fp32, 2, None)];
    let layout = ColumnLayout::of(&runtime, &[]).unwrap();
    let mut request = pd(vec![f64s("z", &[1.5, 2.5]), i64s("a", &[3, 4])]);
    layout.assemble(&mut request, "m").unwrap();
    assert_eq!(f32s_of(&request.inputs[0]), vec![1.5, 3.0, 2.5, 4.0]);
    let mut request = pd(vec![f64s("z", &[1.5])]);
    let error = layout.assemble(&mut request, "m").unwrap_err();
    assert!(
        error.contains("1 column(s) but model 'm' takes 2 features"),
        "{error}"
    );
}

#[test]
fn declared_inputs_name_the_columns() {
    let runtime = [matrix("float_input", DataType::Fp64, 2, None)];
    let declared = [
        matrix("width", DataType::Fp32, 1, None),
        matrix("height", DataType::Fp32, 1, None),
    ];
    let layout = ColumnLayout::of(&runtime, &declared).unwrap();
    let mut request = pd(vec![f64s("height", &[2.0]), f64s("width", &[1.0])]);
    layout.assemble(&mut request, "m").unwrap();
    let values: Vec<f64> = request.inputs[0]
        .data
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(values, vec![1.0, 2.0]);

    // Declaring the matrix itself, or renamed, names no columns.
    for name in ["float_input", "features"] {
        let same = [matrix(name, DataType::Fp32, 2, None)];
        let layout = ColumnLayout::of(&runtime, &same).unwrap();
        assert_eq!((layout.names, layout.problem), (None, None), "{name}");
    }
    // Declarations that do not fit are not used, and say why.
    let layout = ColumnLayout::of(&runtime, &declared[..1]).unwrap();
    assert_eq!(layout.names, None);
    assert!(layout.problem().unwrap().contains("declares 1 columns"));
}

#[test]
fn unusable_feature_names_are_reported_and_ignored() {
    for names in [r#"["a"]"#, r#"["a", "a"]"#, "a b"] {
        let runtime = [matrix("input-0", DataType::Fp32, 2, Some(names))];
        let layout = ColumnLayout::of(&runtime, &[]).unwrap();
        assert_eq!(layout.names, None, "{names}");
        assert!(layout.problem().is_some(), "{names}");
    }
}

#[test]
fn only_models_of_one_matrix_take_columns_and_only_column_requests_are_assembled() {
    assert!(ColumnLayout::of(&[], &[]).is_none());
    let vector = TensorMetadata {
        shape: vec![-1],
        ..matrix("x", DataType::Fp32, 1, None)
    };
    assert!(ColumnLayout::of(&[vector], &[]).is_none());
    let two = [
        matrix("a", DataType::Fp32, 1, None),
        matrix("b", DataType::Fp32, 1, None),
    ];
    assert!(ColumnLayout::of(&two, &[]).is_none());

    let layout = ColumnLayout::of(&[matrix("x", DataType::Fp32, 2, None)], &[]).unwrap();
    let named = InferenceRequest {
        inputs: vec![f64s("x", &[1.0])],
        ..InferenceRequest::default()
    };
    assert!(!layout.applies(&named), "the matrix itself");
    let mut wide = f64s("y", &[1.0, 2.0]);
    wide.shape = vec![1, 2];
    let wrong = InferenceRequest {
        inputs: vec![wide],
        ..InferenceRequest::default()
    };
    assert!(!layout.applies(&wrong), "not a column");
    assert!(!layout.applies(&InferenceRequest::default()));
}

#[test]
fn columns_of_other_kinds_or_lengths_are_refused() {
    let layout = ColumnLayout::of(&[matrix("x", DataType::Fp32, 2, None)], &[]).unwrap();
    let mut text = pd(vec![f64s("a", &[1.0]), strings("b", &["hi"])]);
    let error = layout.assemble(&mut text, "m").unwrap_err();
    assert_eq!(
        error,
        "column 'b' is BYTES but model 'm' takes FP32 features"
    );
    let mut ragged = pd(vec![f64s("a", &[1.0]), f64s("b", &[1.0, 2.0])]);
    let error = layout.assemble(&mut ragged, "m").unwrap_err();
    assert_eq!(error, "column 'b' has 2 rows but column 'a' has 1");

    let layout = ColumnLayout::of(&[matrix("s", DataType::Bytes, 2, None)], &[]).unwrap();
    let mut request = pd(vec![strings("a", &["x", "yy"]), strings("b", &["", "z"])]);
    layout.assemble(&mut request, "m").unwrap();
    let elements: Vec<&[u8]> = request.inputs[0]
        .bytes_elements()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(elements, vec![&b"x"[..], b"", b"yy", b"z"]);
    let mut mixed = pd(vec![strings("a", &["x"]), f64s("b", &[1.0])]);
    assert!(layout.assemble(&mut mixed, "m").is_err());
}

//! The runtimes compiled into the mlhost binary (built from `runtimes/` by the build script).

/// `runtimes/linear`: linear and logistic regression from a JSON file.
const LINEAR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/linear.wasm"));
/// `runtimes/trees`: XGBoost and LightGBM tree ensembles.
const TREES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trees.wasm"));

/// `runtimes/onnx`: ONNX models (scikit-learn through skl2onnx, ...) on tract.
const ONNX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/onnx.wasm"));

/// The built-in runtimes: the name `implementation` gives, and the component's bytes. One
/// component may serve under several names (the compiled code is shared: it is keyed by the
/// component's hash).
pub const BUILT_IN_RUNTIMES: &[(&str, &[u8])] = &[
    ("linear", LINEAR),
    ("trees", TREES),
    ("xgboost", TREES),
    ("lightgbm", TREES),
    ("onnx", ONNX),
];

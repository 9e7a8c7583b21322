//! The runtimes compiled into the mlhost binary (built from `runtimes/` by the build script).

/// `runtimes/linear`: linear and logistic regression from a JSON file.
static LINEAR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/linear.wasm"));
/// `runtimes/trees`: XGBoost, LightGBM and CatBoost tree ensembles.
static TREES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trees.wasm"));

/// `runtimes/onnx`: ONNX models (scikit-learn through skl2onnx, ...) on tract.
static ONNX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/onnx.wasm"));

/// The SHA-256 of each built-in runtime's bytes, from the build script.
static DIGESTS: [(&[u8], &[u8; 32]); 3] = [
    (
        LINEAR,
        include_bytes!(concat!(env!("OUT_DIR"), "/linear.wasm.sha256")),
    ),
    (
        TREES,
        include_bytes!(concat!(env!("OUT_DIR"), "/trees.wasm.sha256")),
    ),
    (
        ONNX,
        include_bytes!(concat!(env!("OUT_DIR"), "/onnx.wasm.sha256")),
    ),
];

/// The SHA-256 of `bytes` when they are a built-in runtime's (the same memory, not merely the
/// same contents: nothing is read), as the build script computed it.
pub(super) fn build_time_digest(bytes: &[u8]) -> Option<[u8; 32]> {
    DIGESTS
        .iter()
        .find(|(runtime, _)| std::ptr::eq(*runtime, bytes))
        .map(|(_, digest)| **digest)
}

/// The built-in runtimes: the name `implementation` gives, and the component's bytes. One
/// component may serve under several names (the compiled code is shared: it is keyed by the
/// component's hash).
pub static BUILT_IN_RUNTIMES: &[(&str, &[u8])] = &[
    ("linear", LINEAR),
    ("trees", TREES),
    ("xgboost", TREES),
    ("lightgbm", TREES),
    ("catboost", TREES),
    ("onnx", ONNX),
];

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn every_built_in_runtime_has_its_digest_from_the_build() {
        for (name, bytes) in BUILT_IN_RUNTIMES {
            let digest = build_time_digest(bytes).unwrap_or_else(|| panic!("{name}: no digest"));
            assert_eq!(
                digest.as_slice(),
                Sha256::digest(bytes).as_slice(),
                "{name}"
            );
        }
        let copy = LINEAR.to_vec();
        assert_eq!(build_time_digest(&copy), None, "a copy is not the built-in");
    }
}

//! Loading an ONNX file into an optimized tract plan with a symbolic batch dimension.

use std::path::{Path, PathBuf};

use mlhost_guest::Error;
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::{DimFact, Factoid, InferenceFact, ShapeFactoid};
use tract_onnx::tract_hir::internal::bail;

use crate::ops;

/// The file read from the model folder when `uri` is a folder (MLServer's default name).
pub const DEFAULT_FILE: &str = "model.onnx";

/// Name of the symbol given to a dynamic dimension 0 of the inputs: the batch.
const BATCH_SYMBOL: &str = "N";

/// One input or output of the graph, as the plan sees it.
#[derive(Debug, Clone)]
pub struct Port {
    /// The name in the ONNX graph.
    pub name: String,
    /// The element type.
    pub datum_type: DatumType,
    /// The dimensions: numbers, or symbols (the batch `N`) and expressions of them.
    pub shape: Vec<TDim>,
}

impl Port {
    /// The shape with every dimension that is not a number as `-1`.
    pub fn metadata_shape(&self) -> Vec<i64> {
        self.shape
            .iter()
            .map(|dim| dim.to_i64().unwrap_or(-1))
            .collect()
    }
}

/// An ONNX model ready to run: its optimized plan and the description of its inputs and outputs.
#[derive(Debug)]
pub struct OnnxModel {
    plan: Arc<TypedRunnableModel>,
    /// The graph's inputs (initializers excluded), in the plan's order.
    pub inputs: Vec<Port>,
    /// The graph's outputs, in the plan's order.
    pub outputs: Vec<Port>,
}

/// The ONNX file named by `uri`: the file itself, or `model.onnx` in the folder it names.
///
/// A folder without `model.onnx` that holds exactly one `.onnx` file is read from that file.
pub fn model_file(uri: &str) -> Result<PathBuf, Error> {
    let path = Path::new(uri);
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let default = path.join(DEFAULT_FILE);
    if default.is_file() {
        return Ok(default);
    }
    let entries = std::fs::read_dir(path).map_err(|error| {
        Error::invalid_model(format!("cannot list {}: {error}", path.display()))
    })?;
    let mut candidates: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|file| file.extension().is_some_and(|ext| ext == "onnx") && file.is_file())
        .collect();
    match candidates.len() {
        1 => Ok(candidates.remove(0)),
        0 => Err(Error::invalid_model(format!(
            "no {DEFAULT_FILE} (nor any .onnx file) in {}; export the model there or name its \
             file in parameters.uri",
            path.display()
        ))),
        _ => Err(Error::invalid_model(format!(
            "{} holds several .onnx files and no {DEFAULT_FILE}; name the one to serve in \
             parameters.uri",
            path.display()
        ))),
    }
}

/// tract-onnx's operator register, with this runtime's own operators ([`ops`]) added.
fn operator_register() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    ops::register(&mut onnx.op_register);
    // Plain reads of external data: memory maps are not there in WASI.
    onnx.provider = Arc::new(tract_onnx::data_resolver::FopenDataResolver);
    onnx
}

/// The names of the operators this runtime can load (ONNX and ONNX-ML, by `op_type`), sorted.
pub fn supported_operators() -> Vec<String> {
    let mut names: Vec<String> = operator_register().op_register.0.into_keys().collect();
    names.sort();
    names
}

impl OnnxModel {
    /// Loads the model from `path` (an ONNX file).
    pub fn from_path(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|error| {
            Error::invalid_model(format!("cannot read {}: {error}", path.display()))
        })?;
        Self::load(&bytes, path.parent())
            .map_err(|error| prefix_model_error(error, &path.display().to_string()))
    }

    /// Loads the model from the bytes of an ONNX file whose weights are all inside it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::load(bytes, None)
    }

    /// Loads the model from the bytes of an ONNX file; external data is read from `folder`.
    fn load(bytes: &[u8], folder: Option<&Path>) -> Result<Self, Error> {
        let onnx = operator_register();
        let proto = onnx
            .proto_model_for_read(&mut &*bytes)
            .map_err(|error| Error::invalid_model(format!("not an ONNX model: {error:#}")))?;
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| Error::invalid_model("the ONNX model has no graph"))?;
        check_operators(&proto, graph, &onnx.op_register)?;
        let (input_names, output_names) = port_names(graph);

        let folder = folder.and_then(Path::to_str);
        let parsed = onnx.parse(&proto, folder).map_err(|error| {
            Error::invalid_model(format!(
                "tract cannot read the graph: {error:#}. {NATIVE_HINT}"
            ))
        })?;
        if !parsed.unresolved_inputs.is_empty() {
            return Err(Error::invalid_model(format!(
                "the graph uses tensors it never defines: {:?}",
                parsed.unresolved_inputs
            )));
        }
        let mut model = parsed.model;
        make_dims_symbolic(&mut model).map_err(|error| {
            Error::invalid_model(format!("cannot describe the inputs: {error:#}"))
        })?;
        let typed = model.into_typed().map_err(|error| {
            Error::invalid_model(format!(
                "tract cannot analyse the graph: {error:#}. {NATIVE_HINT}. {TRACT_OPTIONS}"
            ))
        })?;
        let optimized = typed.into_optimized().map_err(|error| {
            Error::invalid_model(format!(
                "tract cannot optimize the graph: {error:#}. {NATIVE_HINT}"
            ))
        })?;

        let inputs = ports(&optimized, &optimized.inputs, input_names)?;
        let outputs = ports(&optimized, &optimized.outputs, output_names)?;
        let plan = optimized
            .into_runnable()
            .map_err(|error| Error::invalid_model(format!("cannot plan the graph: {error:#}")))?;
        Ok(OnnxModel {
            plan,
            inputs,
            outputs,
        })
    }

    /// Runs the plan on one value per input, in the order of [`OnnxModel::inputs`].
    pub fn run(&self, inputs: TVec<TValue>) -> Result<TVec<TValue>, Error> {
        self.plan
            .run(inputs)
            .map_err(|error| Error::internal(format!("the ONNX model failed: {error:#}")))
    }
}

/// What a user can do about a model tract cannot run.
/// How to serve a model tract cannot run.
const NATIVE_HINT: &str = "The native backend (ONNX Runtime) runs every ONNX operator: serve the \
    model with `\"backend\": \"native\"` or `\"auto\"` on a server that has ONNX Runtime and \
    allows native backends";

/// What else to do on tract.
const TRACT_OPTIONS: &str = "On tract, runtimes/onnx/README.md lists the operators that work: export \
    the model without the operator (with skl2onnx, another converter option or target_opset, for \
    example {'': 17, 'ai.onnx.ml': 3}), do that step in the client, or serve the model with a \
    runtime of your own written with the mlhost guest SDK";

fn prefix_model_error(error: Error, file: &str) -> Error {
    match error {
        Error::InvalidModel(message) => Error::InvalidModel(format!("{file}: {message}")),
        other => other,
    }
}

/// Refuses a graph with an operator that neither tract-onnx nor [`ops`] implements, naming
/// each one (with its domain) and what to do.
fn check_operators(
    proto: &ModelProto,
    graph: &GraphProto,
    register: &tract_onnx::model::OnnxOpRegister,
) -> Result<(), Error> {
    let mut missing: Vec<String> = Vec::new();
    visit_nodes(graph, &mut |node| {
        if !register.0.contains_key(&node.op_type) {
            let domain = if node.domain.is_empty() {
                "ai.onnx"
            } else {
                &node.domain
            };
            let version = proto
                .opset_import
                .iter()
                .find(|import| {
                    import.domain == node.domain
                        || (node.domain.is_empty() && import.domain == "ai.onnx")
                })
                .map(|import| format!(" (opset {})", import.version))
                .unwrap_or_default();
            let name = format!("{domain}:{}{version}", node.op_type);
            if !missing.contains(&name) {
                missing.push(name);
            }
        }
    });
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid_model(format!(
            "the ONNX runtime (tract) does not support the operator{} {}. {NATIVE_HINT}. {TRACT_OPTIONS}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )))
    }
}

/// Calls `visit` on every node of `graph` and of its subgraphs (`If`, `Loop`, `Scan` bodies).
fn visit_nodes(graph: &GraphProto, visit: &mut dyn FnMut(&NodeProto)) {
    for node in &graph.node {
        visit(node);
        for attribute in &node.attribute {
            if let Some(subgraph) = &attribute.g {
                visit_nodes(subgraph, visit);
            }
            for subgraph in &attribute.graphs {
                visit_nodes(subgraph, visit);
            }
        }
    }
}

/// The names of the graph's inputs that are not initializers, and of its outputs, in the order
/// tract gives them.
fn port_names(graph: &GraphProto) -> (Vec<String>, Vec<String>) {
    let inputs = graph
        .input
        .iter()
        .filter(|input| !graph.initializer.iter().any(|init| init.name == input.name))
        .map(|input| input.name.clone())
        .collect();
    let outputs = graph
        .output
        .iter()
        .map(|output| output.name.clone())
        .collect();
    (inputs, outputs)
}

/// Gives every dimension of an input that the graph leaves unknown a symbol: `N` for dimension
/// 0 (the batch), another symbol for the others. Named ONNX dimensions (`dim_param`) are already
/// symbols.
fn make_dims_symbolic(model: &mut InferenceModel) -> TractResult<()> {
    let batch = model.symbols.new_with_prefix(BATCH_SYMBOL);
    for index in 0..model.inputs.len() {
        let fact = model.input_fact(index)?.clone();
        let Some(rank) = fact.shape.rank().concretize() else {
            bail!(
                "input {} has no rank: export the model with input shapes",
                model.node(model.inputs[index].node).name
            );
        };
        let dims: TVec<DimFact> = (0..rank as usize)
            .map(
                |axis| match fact.shape.dim(axis).and_then(|dim| dim.concretize()) {
                    Some(dim) => DimFact::from(dim),
                    None if axis == 0 => DimFact::from(TDim::Sym(batch.clone())),
                    None => DimFact::from(TDim::Sym(model.symbols.new_with_prefix("d"))),
                },
            )
            .collect();
        let mut symbolic = InferenceFact::default().with_shape(ShapeFactoid::closed(dims));
        if let Some(datum_type) = fact.datum_type.concretize() {
            symbolic = symbolic.with_datum_type(datum_type);
        }
        model.set_input_fact(index, symbolic)?;
    }
    Ok(())
}

/// Describes the plan's `outlets` under the graph's `names`.
fn ports(model: &TypedModel, outlets: &[OutletId], names: Vec<String>) -> Result<Vec<Port>, Error> {
    if names.len() != outlets.len() {
        return Err(Error::invalid_model(format!(
            "the graph names {} tensors where tract has {}",
            names.len(),
            outlets.len()
        )));
    }
    outlets
        .iter()
        .zip(names)
        .map(|(outlet, name)| {
            let fact = model
                .outlet_fact(*outlet)
                .map_err(|error| Error::invalid_model(format!("{name}: {error:#}")))?;
            crate::convert::datatype(fact.datum_type).ok_or_else(|| {
                Error::invalid_model(format!(
                    "tensor '{name}' has element type {:?}, which the protocol cannot carry",
                    fact.datum_type
                ))
            })?;
            Ok(Port {
                name,
                datum_type: fact.datum_type,
                shape: fact.shape.iter().cloned().collect(),
            })
        })
        .collect()
}

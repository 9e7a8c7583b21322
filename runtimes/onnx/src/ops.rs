//! ONNX-ML operators that tract-onnx lacks, registered beside its own.
//!
//! - `Scaler` (ai.onnx.ml): `Y = (X - offset) * scale`, per feature (the last axis) or with one
//!   offset and scale for every feature. skl2onnx exports scikit-learn's `StandardScaler`,
//!   `MinMaxScaler`, `MaxAbsScaler` and `RobustScaler` as a `Scaler`.

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_core::ops::cast::cast;
use tract_onnx::tract_core::ops::math::{mul, sub};
use tract_onnx::tract_hir::internal::*;

/// Adds this module's operators to tract-onnx's register.
pub fn register(register: &mut OnnxOpRegister) {
    register.insert("Scaler", scaler);
}

/// The ONNX-ML `Scaler`: an offset, then a scale, both per feature (or one for all).
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Scaler {
    offset: Arc<Tensor>,
    scale: Arc<Tensor>,
}

fn scaler(
    _context: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let offset: Vec<f32> = node
        .get_attr_opt_vec("offset")?
        .unwrap_or_else(|| vec![0.0]);
    let scale: Vec<f32> = node.get_attr_opt_vec("scale")?.unwrap_or_else(|| vec![1.0]);
    node.expect_attr("offset", !offset.is_empty(), "at least one value")?;
    node.expect_attr("scale", !scale.is_empty(), "at least one value")?;
    Ok((
        expand(Scaler {
            offset: rctensor1(&offset),
            scale: rctensor1(&scale),
        }),
        vec![],
    ))
}

impl Expansion for Scaler {
    fn name(&self) -> StaticName {
        "Scaler".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        solver: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        solver.equals(&outputs[0].datum_type, DatumType::F32)?;
        solver.equals(&inputs[0].shape, &outputs[0].shape)?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let fact = model.outlet_fact(inputs[0])?.clone();
        ensure!(fact.rank() >= 1, "Scaler takes an input of rank 1 or more");
        let features = &fact.shape[fact.rank() - 1];
        for (name, values) in [("offset", &self.offset), ("scale", &self.scale)] {
            if let Ok(features) = features.to_usize() {
                ensure!(
                    values.len() == 1 || values.len() == features,
                    "Scaler has {} {name} values for {features} features",
                    values.len()
                );
            }
        }
        let mut x = inputs[0];
        if fact.datum_type != f32::datum_type() {
            x = model.wire_node(format!("{prefix}.to_f32"), cast(f32::datum_type()), &[x])?[0];
        }
        let offset = model.add_const(format!("{prefix}.offset"), self.offset.clone())?;
        let scale = model.add_const(format!("{prefix}.scale"), self.scale.clone())?;
        let centred =
            wire_with_rank_broadcast(format!("{prefix}.sub"), model, sub(), &[x, offset])?;
        wire_with_rank_broadcast(format!("{prefix}.mul"), model, mul(), &[centred[0], scale])
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(1)
    }
}

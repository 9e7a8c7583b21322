//! The request's feature matrix, converted as each framework converts its input.
//!
//! MLServer decodes the one input tensor into a NumPy array of its own datatype and hands it to
//! the library: XGBoost reads every element as `float` (a direct cast, from any numeric type);
//! LightGBM keeps `float64` and `float32` arrays and converts any other datatype to `float32`
//! first, then reads `double`s. Converting the same way keeps split decisions identical.

use mlhost_guest::{Datatype, Error, Tensor};

/// Checks that `input` is `[rows, num_features]` and returns its number of rows.
pub fn check_shape(input: &Tensor, num_features: usize) -> Result<usize, Error> {
    input.expect_rank(2)?;
    if input.row_len() != num_features {
        return Err(Error::invalid_input(format!(
            "input '{}' has {} features per row (shape {:?}), the model takes {num_features}",
            input.name,
            input.row_len(),
            input.shape
        )));
    }
    Ok(input.rows())
}

/// The elements as `f32`, each rounded once from its own datatype (as a C cast would).
pub fn to_f32(input: &Tensor) -> Result<Vec<f32>, Error> {
    Ok(match input.datatype {
        // 64-bit integers do not fit f64 exactly: round them to f32 directly.
        Datatype::Int64 => input
            .values::<i64>()?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        Datatype::Uint64 => input
            .values::<u64>()?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        // Every other datatype is exact in f64, so f64 → f32 rounds once.
        _ => input.to_f32_vec()?,
    })
}

/// The elements as LightGBM reads them: `f64` as is, any other datatype through `f32`.
///
/// LightGBM's dense-row reader also drops values within ±1e-35 (its zero threshold, a
/// `float`), which then read as 0.
pub fn to_lightgbm_f64(input: &Tensor) -> Result<Vec<f64>, Error> {
    let zero = f64::from(1e-35f32);
    let values: Vec<f64> = match input.datatype {
        Datatype::Fp64 => input.to_f64_vec()?,
        _ => to_f32(input)?.into_iter().map(f64::from).collect(),
    };
    Ok(values
        .into_iter()
        .map(|v| if v.abs() <= zero { 0.0 } else { v })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_once_to_f32() {
        // 2^60 + 2^36 + 1 is just past halfway between two f32s: directly it rounds up; via
        // f64 it first loses the 1, lands on the halfway point and ties down.
        let big = (1i64 << 60) + (1 << 36) + 1;
        let tensor = Tensor::from_values("x", &[1, 1], &[big]).unwrap();
        assert_eq!(to_f32(&tensor).unwrap(), vec![big as f32]);
        assert_ne!(big as f32, big as f64 as f32);
    }

    #[test]
    fn lightgbm_reads_non_doubles_through_f32_and_drops_tiny_values() {
        let tensor = Tensor::from_values("x", &[1, 3], &[0.1f32, 1e-36, -2.0]).unwrap();
        assert_eq!(
            to_lightgbm_f64(&tensor).unwrap(),
            vec![f64::from(0.1f32), 0.0, -2.0]
        );
        let tensor = Tensor::from_values("x", &[1, 2], &[3i32, 1]).unwrap();
        assert_eq!(to_lightgbm_f64(&tensor).unwrap(), vec![3.0, 1.0]);
        let tensor = Tensor::from_values("x", &[1, 2], &[0.1f64, f64::NAN]).unwrap();
        let values = to_lightgbm_f64(&tensor).unwrap();
        assert_eq!(values[0], 0.1);
        assert!(values[1].is_nan());
    }

    #[test]
    fn the_width_must_match() {
        let tensor = Tensor::from_values("x", &[2, 2], &[1.0f32; 4]).unwrap();
        assert_eq!(check_shape(&tensor, 2).unwrap(), 2);
        assert!(matches!(
            check_shape(&tensor, 3),
            Err(Error::InvalidInput(_))
        ));
        let flat = Tensor::from_values("x", &[4], &[1.0f32; 4]).unwrap();
        assert!(matches!(check_shape(&flat, 4), Err(Error::InvalidInput(_))));
    }
}

//! How a LightGBM split node decides: its `decision_type` read into node flags (categorical,
//! default-left, missing type), the category sets of categorical splits, and the split rule
//! itself (LightGBM's `Tree::Decision`: numerical and categorical).

use super::text::TreeBlock;
use crate::ensemble::{CategorySets, SplitRule, flags};

/// LightGBM's zero threshold (`kZeroThreshold`, a `float`).
const ZERO_THRESHOLD: f64 = 1.0000000180025095e-35;

/// LightGBM's split rule (`Tree::Decision`).
#[derive(Clone, Copy)]
pub(super) struct LgbRule;

impl SplitRule<f64> for LgbRule {
    #[inline(always)]
    fn go_left(self, x: f64, value: f64, node_flags: u8, categories: &CategorySets) -> bool {
        if node_flags & flags::CATEGORICAL != 0 {
            // `static_cast<int>(x) < 0` on x86: NaN and values past i32 are INT_MIN.
            if !(x > -1.0 && x < 2_147_483_648.0) {
                return false;
            }
            return categories.contains(value as usize, x as u32);
        }
        let mut x = x;
        if x.is_nan() {
            if node_flags & flags::MISSING_NAN != 0 {
                return node_flags & flags::DEFAULT_LEFT != 0;
            }
            x = 0.0;
        }
        if node_flags & flags::MISSING_ZERO != 0 && (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&x)
        {
            return node_flags & flags::DEFAULT_LEFT != 0;
        }
        x <= value
    }
}

/// The flags of node `node` of tree `tree` from its `decision_type`: bit 0 categorical, bit 1
/// default left, bits 2-3 the missing type (None, Zero, NaN).
pub(super) fn decision_flags(tree: usize, node: usize, decision: i16) -> Result<u8, String> {
    let mut node_flags = 0u8;
    if decision & 1 != 0 {
        node_flags |= flags::CATEGORICAL;
    }
    if decision & 2 != 0 {
        node_flags |= flags::DEFAULT_LEFT;
    }
    match (decision >> 2) & 3 {
        0 => {}
        1 => node_flags |= flags::MISSING_ZERO,
        2 => node_flags |= flags::MISSING_NAN,
        _ => {
            return Err(format!(
                "tree {tree}: node {node} has decision_type {decision} (unknown missing type)"
            ));
        }
    }
    Ok(node_flags)
}

/// The category sets of a tree's categorical splits, `(cat_boundaries, cat_threshold)`:
/// `num_cat` bitsets (empty when the tree has no categorical split).
pub(super) fn category_sets(
    tree: &TreeBlock,
    num_cat: usize,
) -> Result<(Vec<u32>, Vec<u32>), String> {
    if num_cat == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let bounds: Vec<u32> = tree.array("cat_boundaries", num_cat + 1)?;
    let words_len = *bounds.last().unwrap_or(&0) as usize;
    let words: Vec<u32> = tree.array("cat_threshold", words_len)?;
    Ok((bounds, words))
}

/// Checks that categorical node `node` of tree `tree` names one of the tree's `num_cat`
/// category sets.
pub(super) fn check_category_set(
    tree: usize,
    node: usize,
    value: f64,
    num_cat: usize,
) -> Result<(), String> {
    if value >= 0.0 && value < num_cat as f64 {
        return Ok(());
    }
    Err(format!(
        "tree {tree}: categorical node {node} refers to category set {value}, the tree has \
         {num_cat}"
    ))
}

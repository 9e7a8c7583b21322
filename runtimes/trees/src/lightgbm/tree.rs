//! One `Tree=` block read into the nodes of [`crate::ensemble`]: its internal nodes, then its
//! leaves (LightGBM's child `~k` is leaf `k`), and its category sets.

use super::split::{category_sets, check_category_set, decision_flags};
use super::text::TreeBlock;
use crate::ensemble::{Node, flags};

/// The nodes of a tree: its internal nodes, then its leaves (LightGBM's child `~k` is leaf
/// `k`); and its category sets.
pub(super) type TreeParts = (Vec<Node<f64>>, Vec<u32>, Vec<u32>);

/// The parts of one tree.
pub(super) fn tree_nodes(tree: &TreeBlock) -> Result<TreeParts, String> {
    let index = tree.index;
    let num_leaves = num_leaves(tree)?;
    let leaf_values: Vec<f64> = tree.array("leaf_value", num_leaves)?;
    if num_leaves == 1 {
        return Ok((vec![Node::leaf(leaf_values[0])], Vec::new(), Vec::new()));
    }
    let internal = num_leaves - 1;
    let features: Vec<u32> = tree.array("split_feature", internal)?;
    let thresholds: Vec<f64> = tree.array("threshold", internal)?;
    let decision_types: Vec<i16> = tree.array("decision_type", internal)?;
    let left: Vec<i64> = tree.array("left_child", internal)?;
    let right: Vec<i64> = tree.array("right_child", internal)?;
    let num_cat = match tree.fields.get("num_cat") {
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| format!("tree {index}: num_cat is '{text}'"))?,
        None => 0,
    };
    let (bounds, words) = category_sets(tree, num_cat)?;

    let child = |child: i64| child_node(index, child, internal, num_leaves);
    let mut nodes = Vec::with_capacity(internal + num_leaves);
    for node in 0..internal {
        let node_flags = decision_flags(index, node, decision_types[node])?;
        let value = thresholds[node];
        if node_flags & flags::CATEGORICAL != 0 {
            check_category_set(index, node, value, num_cat)?;
        }
        nodes.push(Node {
            feature: features[node],
            value,
            left: child(left[node])?,
            right: child(right[node])?,
            flags: node_flags,
        });
    }
    nodes.extend(leaf_values.into_iter().map(Node::leaf));
    Ok((nodes, bounds, words))
}

/// `num_leaves`, at least 1; a linear tree is refused.
fn num_leaves(tree: &TreeBlock) -> Result<usize, String> {
    let index = tree.index;
    let num_leaves = tree
        .field("num_leaves")?
        .parse::<usize>()
        .ok()
        .filter(|&leaves| leaves >= 1)
        .ok_or_else(|| format!("tree {index}: num_leaves is not a positive count"))?;
    if tree
        .fields
        .get("is_linear")
        .is_some_and(|value| *value != "0")
    {
        return Err(format!(
            "tree {index} is a linear tree (linear_tree=true): not supported; retrain \
             without linear_tree"
        ));
    }
    Ok(num_leaves)
}

/// The node a child reference of tree `tree` stands for: `child` for an internal node, and
/// `internal + k` for leaf `k` (written `~k`); out-of-range references are refused.
fn child_node(tree: usize, child: i64, internal: usize, num_leaves: usize) -> Result<u32, String> {
    let node = if child >= 0 {
        child
    } else {
        // ~leaf: leaves follow the internal nodes.
        internal as i64 + !child
    };
    u32::try_from(node)
        .ok()
        .filter(|&node| (node as usize) < internal + num_leaves)
        .ok_or_else(|| format!("tree {tree}: child {child} is out of range"))
}

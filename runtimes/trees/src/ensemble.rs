//! Tree ensembles as flat arrays, and their evaluation.
//!
//! Every node of every tree lives in one array indexed by a `u32` node id, each entry holding
//! what a step down the tree reads: the feature it tests, its value (a split's threshold, a
//! leaf's output, or a categorical split's category set), its first child and its flags. Nodes are renumbered
//! breadth-first when a tree is added so that a node's two children are adjacent (`child`,
//! `child + 1`): a step down the tree is `child + !go_left`, without a branch. A tree is the id
//! of its root and the output group (class, or target) its leaves add to. Trees are checked
//! when they are added — children in range, features in range, every node reached once from
//! the root — so evaluation is a loop of array reads that always ends at a leaf, with no
//! allocation. Rows are evaluated in blocks of [`BLOCK_ROWS`], tree after tree, so that a
//! tree's nodes stay in cache across the rows of a block, and [`LANES`] rows go down a tree side
//! by side (their reads overlap); each row still adds its trees' outputs in the order the trees
//! were added (the order the libraries add them in).
//!
//! How a split decides (where missing values go, `<` or `<=`) is a [`SplitRule`]: XGBoost's and
//! LightGBM's differ, and each is compiled into its own copy of the loop.

use std::ops::AddAssign;

/// Rows evaluated together, tree after tree (XGBoost's CPU predictor uses 64 too).
pub const BLOCK_ROWS: usize = 64;

/// Rows that go down a tree side by side.
const LANES: usize = 4;

/// Node flags.
pub mod flags {
    /// The node is a leaf: its value is the tree's output.
    pub const LEAF: u8 = 1;
    /// A missing value goes to the left child.
    pub const DEFAULT_LEFT: u8 = 2;
    /// LightGBM missing type Zero: zero (and NaN) take the default child.
    pub const MISSING_ZERO: u8 = 4;
    /// LightGBM missing type NaN: NaN takes the default child.
    pub const MISSING_NAN: u8 = 8;
    /// LightGBM categorical split: the value is the index of a category set.
    pub const CATEGORICAL: u8 = 16;
}

/// A number type of node values and features: `f32` (XGBoost) or `f64` (LightGBM).
pub trait Value: Copy + Default + AddAssign + PartialOrd {
    /// The value that stands for category set `index` in a categorical split.
    fn from_index(index: u32) -> Self;
    /// The category set index a categorical split's value stands for.
    fn to_index(self) -> usize;
}

impl Value for f32 {
    fn from_index(index: u32) -> Self {
        index as f32
    }
    fn to_index(self) -> usize {
        self as usize
    }
}

impl Value for f64 {
    fn from_index(index: u32) -> Self {
        f64::from(index)
    }
    fn to_index(self) -> usize {
        self as usize
    }
}

/// One node of a tree being added; `left` and `right` are indices within its tree.
#[derive(Debug, Clone, Copy)]
pub struct Node<T> {
    /// The feature a split tests (ignored for leaves).
    pub feature: u32,
    /// A split's threshold, a leaf's output, or a categorical split's category set (an index
    /// into the tree's own sets).
    pub value: T,
    /// The left child of a split.
    pub left: u32,
    /// The right child of a split.
    pub right: u32,
    /// [`flags`].
    pub flags: u8,
}

impl<T: Value> Node<T> {
    /// A leaf whose output is `value`.
    pub fn leaf(value: T) -> Self {
        Node {
            feature: 0,
            value,
            left: 0,
            right: 0,
            flags: flags::LEAF,
        }
    }
}

/// Category sets of categorical splits: set `i` is the bitset
/// `words[bounds[i]..bounds[i + 1]]` (bit `c % 32` of word `c / 32` is category `c`).
#[derive(Debug, Default)]
pub struct CategorySets {
    bounds: Vec<u32>,
    words: Vec<u32>,
}

impl CategorySets {
    /// Whether `category` is in set `set` (categories past the bitset are not).
    #[inline]
    pub fn contains(&self, set: usize, category: u32) -> bool {
        let start = self.bounds[set] as usize;
        let end = self.bounds[set + 1] as usize;
        let word = (category / 32) as usize;
        word < end - start && (self.words[start + word] >> (category % 32)) & 1 == 1
    }

    fn len(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }
}

/// How a split node sends a feature value left or right.
pub trait SplitRule<T>: Copy {
    /// Whether a row whose feature value is `x` goes to the left child of a split node with
    /// `value` and `flags`.
    fn go_left(self, x: T, value: T, flags: u8, categories: &CategorySets) -> bool;
}

/// A node as evaluation reads it: everything a step down the tree needs in one place (one
/// cache line holds several).
#[derive(Debug, Clone, Copy)]
struct Packed<T> {
    value: T,
    feature: u32,
    /// The left child; the right one is `child + 1`.
    child: u32,
    flags: u8,
}

/// The trees of a model, flattened.
#[derive(Debug, Default)]
pub struct Forest<T> {
    nodes: Vec<Packed<T>>,
    roots: Vec<u32>,
    groups: Vec<u32>,
    categories: CategorySets,
    num_features: usize,
    num_groups: usize,
}

impl<T: Value> Forest<T> {
    /// An empty forest of trees over `num_features` features, adding into `num_groups` outputs.
    pub fn new(num_features: usize, num_groups: usize) -> Self {
        Forest {
            categories: CategorySets {
                bounds: vec![0],
                words: Vec::new(),
            },
            num_features,
            num_groups,
            ..Forest::default()
        }
    }

    /// The number of trees.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Whether the forest has no tree.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The number of output groups.
    pub fn num_groups(&self) -> usize {
        self.num_groups
    }

    /// Adds a tree whose root is `nodes[0]` and whose leaves add to output `group`.
    ///
    /// `category_sets` are the tree's own sets, `(bounds, words)` as in [`CategorySets`]; a
    /// categorical node's value is an index into them. Fails, saying why, on a child, feature,
    /// group or category set out of range, or on a node reached twice (a cycle).
    pub fn add_tree(
        &mut self,
        group: usize,
        nodes: &[Node<T>],
        category_sets: (&[u32], &[u32]),
    ) -> Result<(), String> {
        if group >= self.num_groups {
            return Err(format!(
                "the tree adds to output {group}, the model has {}",
                self.num_groups
            ));
        }
        if nodes.is_empty() {
            return Err("a tree has no nodes".to_string());
        }
        let (bounds, words) = category_sets;
        let local_sets = check_category_sets(bounds, words)?;
        let base = u32::try_from(self.nodes.len())
            .ok()
            .filter(|base| base.checked_add(nodes.len() as u32).is_some())
            .ok_or("the model has more than 2^32 nodes")?;
        self.check_tree(nodes, local_sets)?;
        self.append_nodes(nodes, base);
        let word_base = self.categories.words.len() as u32;
        self.categories.words.extend_from_slice(words);
        self.categories
            .bounds
            .extend(bounds.iter().skip(1).map(|&end| word_base + end));
        self.roots.push(base);
        self.groups.push(group as u32);
        Ok(())
    }

    /// Checks that every node is reached once from the root (no cycle, no shared child), with
    /// children, features and category sets (of the tree's `local_sets`) in range.
    fn check_tree(&self, nodes: &[Node<T>], local_sets: usize) -> Result<(), String> {
        let mut seen = vec![false; nodes.len()];
        let mut stack = vec![0usize];
        while let Some(index) = stack.pop() {
            if std::mem::replace(&mut seen[index], true) {
                return Err(format!("node {index} is reached twice (not a tree)"));
            }
            let node = &nodes[index];
            if node.flags & flags::LEAF != 0 {
                continue;
            }
            for child in [node.left, node.right] {
                if child as usize >= nodes.len() {
                    return Err(format!(
                        "node {index} has child {child}, the tree has {} nodes",
                        nodes.len()
                    ));
                }
                stack.push(child as usize);
            }
            if node.feature as usize >= self.num_features {
                return Err(format!(
                    "node {index} splits on feature {}, the model has {} features",
                    node.feature, self.num_features
                ));
            }
            if node.flags & flags::CATEGORICAL != 0 && node.value.to_index() >= local_sets {
                return Err(format!(
                    "node {index} refers to category set {}, the tree has {local_sets}",
                    node.value.to_index()
                ));
            }
        }
        Ok(())
    }

    /// Appends a checked tree's nodes, renumbered breadth-first from `base`, with categorical
    /// values shifted past the sets already held.
    fn append_nodes(&mut self, nodes: &[Node<T>], base: u32) {
        let base_set = self.categories.len() as u32;
        let (order, new_index) = breadth_first(nodes);
        for &old in &order {
            let node = &nodes[old];
            let leaf = node.flags & flags::LEAF != 0;
            let categorical = !leaf && node.flags & flags::CATEGORICAL != 0;
            self.nodes.push(Packed {
                value: if categorical {
                    T::from_index(base_set + node.value.to_index() as u32)
                } else {
                    node.value
                },
                feature: if leaf { 0 } else { node.feature },
                child: if leaf {
                    0
                } else {
                    base + new_index[node.left as usize]
                },
                flags: node.flags,
            });
        }
    }

    /// Adds every tree's output for each row of `rows` (`num_features` values a row) to its
    /// `num_groups` values of `sums`, tree after tree, in the order the trees were added.
    pub fn accumulate<R: SplitRule<T>>(&self, rule: R, rows: &[T], sums: &mut [T]) {
        if self.num_features == 0 || self.num_groups == 0 {
            return;
        }
        for (block, block_sums) in rows
            .chunks(BLOCK_ROWS * self.num_features)
            .zip(sums.chunks_mut(BLOCK_ROWS * self.num_groups))
        {
            for (&root, &group) in self.roots.iter().zip(&self.groups) {
                self.accumulate_tree(rule, root as usize, group as usize, block, block_sums);
            }
        }
    }

    /// Adds one tree's output for each row of `rows` to its group's value in `sums`: rows go
    /// down the tree [`LANES`] at a time, their steps interleaved, so that one row's memory
    /// reads overlap another's instead of each waiting for the last.
    #[inline(always)]
    fn accumulate_tree<R: SplitRule<T>>(
        &self,
        rule: R,
        root: usize,
        group: usize,
        rows: &[T],
        sums: &mut [T],
    ) {
        let (features, groups) = (self.num_features, self.num_groups);
        let mut lanes = rows.chunks_exact(LANES * features);
        let mut lane_sums = sums.chunks_exact_mut(LANES * groups);
        for (rows, sums) in (&mut lanes).zip(&mut lane_sums) {
            let row = |lane: usize| &rows[lane * features..(lane + 1) * features];
            let leaves = self.leaves(rule, root, std::array::from_fn(row));
            for (lane, leaf) in leaves.into_iter().enumerate() {
                sums[lane * groups + group] += self.nodes[leaf].value;
            }
        }
        for (row, row_sums) in lanes
            .remainder()
            .chunks_exact(features)
            .zip(lane_sums.into_remainder().chunks_exact_mut(groups))
        {
            row_sums[group] += self.nodes[self.leaf(rule, root, row)].value;
        }
    }

    /// The leaves [`LANES`] rows reach from `root`, walked side by side.
    #[inline(always)]
    fn leaves<R: SplitRule<T>>(&self, rule: R, root: usize, rows: [&[T]; LANES]) -> [usize; LANES] {
        let mut nodes = [root; LANES];
        loop {
            let mut moved = false;
            for (node, row) in nodes.iter_mut().zip(rows) {
                let packed = self.nodes[*node];
                if packed.flags & flags::LEAF == 0 {
                    let x = row[packed.feature as usize];
                    let right = !rule.go_left(x, packed.value, packed.flags, &self.categories);
                    *node = packed.child as usize + usize::from(right);
                    moved = true;
                }
            }
            if !moved {
                return nodes;
            }
        }
    }

    /// The leaf a row reaches from `root`.
    #[inline(always)]
    fn leaf<R: SplitRule<T>>(&self, rule: R, root: usize, row: &[T]) -> usize {
        let mut node = root;
        loop {
            let packed = self.nodes[node];
            if packed.flags & flags::LEAF != 0 {
                return node;
            }
            let x = row[packed.feature as usize];
            let right = !rule.go_left(x, packed.value, packed.flags, &self.categories);
            node = packed.child as usize + usize::from(right);
        }
    }
}

/// Checks a tree's category sets, `(bounds, words)` as in [`CategorySets`]; returns how many
/// sets there are.
fn check_category_sets(bounds: &[u32], words: &[u32]) -> Result<usize, String> {
    if bounds.windows(2).any(|pair| pair[0] > pair[1])
        || bounds.last().is_some_and(|&end| end as usize > words.len())
    {
        return Err("the tree's category sets are out of order or out of range".to_string());
    }
    Ok(bounds.len().saturating_sub(1))
}

/// The breadth-first order of a checked tree's nodes, and each node's position in it: the
/// children of the k-th split are adjacent.
fn breadth_first<T>(nodes: &[Node<T>]) -> (Vec<usize>, Vec<u32>) {
    let mut order = Vec::with_capacity(nodes.len());
    let mut new_index = vec![0u32; nodes.len()];
    order.push(0usize);
    let mut next = 0;
    while next < order.len() {
        let node = &nodes[order[next]];
        next += 1;
        if node.flags & flags::LEAF == 0 {
            new_index[node.left as usize] = order.len() as u32;
            order.push(node.left as usize);
            new_index[node.right as usize] = order.len() as u32;
            order.push(node.right as usize);
        }
    }
    (order, new_index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x < value` goes left, NaN goes to the default child.
    #[derive(Clone, Copy)]
    struct LessThan;

    impl SplitRule<f32> for LessThan {
        fn go_left(self, x: f32, value: f32, flags: u8, _: &CategorySets) -> bool {
            if x.is_nan() {
                flags & flags::DEFAULT_LEFT != 0
            } else {
                x < value
            }
        }
    }

    fn split(feature: u32, value: f32, left: u32, right: u32, flags: u8) -> Node<f32> {
        Node {
            feature,
            value,
            left,
            right,
            flags,
        }
    }

    #[test]
    fn trees_add_their_leaves_into_their_groups() {
        let mut forest = Forest::new(2, 2);
        let stump = [
            split(0, 0.5, 1, 2, flags::DEFAULT_LEFT),
            Node::leaf(1.0),
            Node::leaf(2.0),
        ];
        forest.add_tree(0, &stump, (&[], &[])).unwrap();
        let other = [split(1, 0.0, 2, 1, 0), Node::leaf(10.0), Node::leaf(20.0)];
        forest.add_tree(1, &other, (&[], &[])).unwrap();
        forest.add_tree(1, &[Node::leaf(0.5)], (&[], &[])).unwrap();

        let mut sums = [0.0f32; 4];
        forest.accumulate(LessThan, &[0.5, -1.0, f32::NAN, f32::NAN], &mut sums);
        assert_eq!(sums[..2], [2.0, 20.5], "0.5 < 0.5 is false: right");
        assert_eq!(sums[2..], [1.0, 10.5], "NaN takes the default child");

        // Many rows: blocks give each row its own sums.
        let rows: Vec<f32> = (0..300).flat_map(|i| [i as f32 / 300.0, -1.0]).collect();
        let mut sums = vec![0.0f32; 600];
        forest.accumulate(LessThan, &rows, &mut sums);
        for (i, row_sums) in sums.chunks_exact(2).enumerate() {
            let expected = if (i as f32 / 300.0) < 0.5 { 1.0 } else { 2.0 };
            assert_eq!(row_sums, [expected, 20.5], "row {i}");
        }
    }

    #[test]
    fn malformed_trees_are_refused() {
        let mut forest = Forest::<f32>::new(2, 1);
        let cycle = [
            split(0, 0.0, 1, 2, 0),
            split(0, 0.0, 0, 2, 0),
            Node::leaf(1.0),
        ];
        assert!(forest.add_tree(0, &cycle, (&[], &[])).is_err());
        let shared = [split(0, 0.0, 1, 1, 0), Node::leaf(1.0)];
        assert!(forest.add_tree(0, &shared, (&[], &[])).is_err());
        let out_of_range = [split(0, 0.0, 1, 5, 0), Node::leaf(1.0)];
        assert!(forest.add_tree(0, &out_of_range, (&[], &[])).is_err());
        let bad_feature = [split(2, 0.0, 1, 2, 0), Node::leaf(1.0), Node::leaf(2.0)];
        assert!(forest.add_tree(0, &bad_feature, (&[], &[])).is_err());
        assert!(forest.add_tree(1, &[Node::leaf(1.0)], (&[], &[])).is_err());
        let categorical = [
            split(0, 0.0, 1, 2, flags::CATEGORICAL),
            Node::leaf(1.0),
            Node::leaf(2.0),
        ];
        assert!(forest.add_tree(0, &categorical, (&[], &[])).is_err());
        assert_eq!(forest.len(), 0, "nothing was added");
    }

    #[test]
    fn category_sets_are_bitsets() {
        let mut forest = Forest::<f64>::new(1, 1);
        let tree = [
            Node {
                feature: 0,
                value: 0.0,
                left: 1,
                right: 2,
                flags: flags::CATEGORICAL,
            },
            Node::leaf(1.0),
            Node::leaf(2.0),
        ];
        forest.add_tree(0, &tree, (&[0, 2], &[0b1010, 1])).unwrap();
        let sets = &forest.categories;
        let members: Vec<u32> = (0..70).filter(|&c| sets.contains(0, c)).collect();
        assert_eq!(members, vec![1, 3, 32]);
    }
}

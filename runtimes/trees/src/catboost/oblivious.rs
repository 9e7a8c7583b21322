//! Oblivious (symmetric) trees evaluated as CatBoost evaluates them: each row's features are
//! first turned into small integers, then each tree is a table indexed by its splits' bits.
//!
//! A float feature becomes the number of its borders below the value (`x > border` is CatBoost's
//! condition, in `float`), so a split on its `j`-th border is `bin >= j + 1`; NaN becomes 0, or
//! every border when the feature's `nan_value_treatment` is `AsTrue`. A one-hot split is a bin of
//! its own, 1 when the row's category hashes to the split's value. A tree of depth `d` then
//! reads `d` bins, and bit `l` of its leaf index is level `l`'s condition; leaf values are
//! `f64`, added tree after tree. Rows go in blocks of [`BLOCK_ROWS`], every tree over the
//! block, so that a tree's splits and leaves stay in cache.
//!
//! Non-symmetric trees (`Depthwise`, `Lossguide`) read the same bins: a row walks from the root,
//! a true condition going right, until the side it takes has no child; that node's leaf values
//! are added.

use super::cityhash::category_hash;
use super::description::{Description, STOP, Split, TreeNode};
use mlhost_guest::Error;

/// Rows binarized and evaluated together.
const BLOCK_ROWS: usize = 64;

/// A float feature's bin: its column, its sorted borders, where NaN goes.
#[derive(Debug)]
struct FloatBin {
    column: usize,
    borders: Vec<f32>,
    nan_as_true: bool,
}

/// A one-hot condition's bin: the categorical column (an index into `cat_columns`) and the
/// hash it must equal.
#[derive(Debug)]
struct OneHotBin {
    cat: usize,
    hash: u32,
}

/// A level of a tree: the bin it reads, and the least value that is `true`.
#[derive(Debug, Clone, Copy)]
struct Level {
    bin: u32,
    threshold: u16,
}

/// A node of a non-symmetric tree: its level (a threshold of 0 is a leaf: always true, so the
/// walk takes `right`, which is [`NO_CHILD`]), its children's indices in the model's nodes, and
/// where its leaf values start.
#[derive(Debug, Clone, Copy)]
struct Node {
    level: Level,
    left: u32,
    right: u32,
    leaf: u32,
}

/// A child that is not there: the walk stops.
const NO_CHILD: u32 = u32::MAX;

/// The compiled trees of a model.
#[derive(Debug)]
pub struct Oblivious {
    columns: usize,
    floats: Vec<FloatBin>,
    cat_columns: Vec<usize>,
    one_hot: Vec<OneHotBin>,
    levels: Vec<Level>,
    depths: Vec<u8>,
    nodes: Vec<Node>,
    roots: Vec<u32>,
    leaf_values: Vec<f64>,
    dimension: usize,
    scale: f64,
    bias: Vec<f64>,
}

impl Oblivious {
    /// Compiles a model's trees; fails on a split naming a feature the model lacks.
    pub fn compile(model: &Description) -> Result<Self, String> {
        let mut compiled = Oblivious {
            columns: model.columns,
            floats: Vec::new(),
            cat_columns: Vec::new(),
            one_hot: Vec::new(),
            levels: Vec::new(),
            depths: Vec::new(),
            nodes: Vec::new(),
            roots: Vec::new(),
            leaf_values: model.leaf_values.clone(),
            dimension: model.dimension,
            scale: model.scale,
            bias: match model.bias.as_slice() {
                [one] => vec![*one; model.dimension],
                many if many.len() == model.dimension => many.to_vec(),
                _ => return Err("scale_and_bias has a bias per dimension of another count".into()),
            },
        };
        // Bins: every float feature a split uses, with the borders splits use.
        let mut float_bins: Vec<Option<usize>> = Vec::new();
        let node_splits = model
            .node_trees
            .iter()
            .flatten()
            .filter_map(|node| node.split);
        for split in model.trees.iter().flatten().copied().chain(node_splits) {
            if let Split::Float { feature, border } = split {
                let spec = model
                    .floats
                    .iter()
                    .find(|f| f.index == feature)
                    .ok_or_else(|| {
                        format!("a split on float feature {feature}, which the model lacks")
                    })?;
                if float_bins.len() <= feature {
                    float_bins.resize(feature + 1, None);
                }
                let bin = *float_bins[feature].get_or_insert_with(|| {
                    compiled.floats.push(FloatBin {
                        column: spec.column,
                        borders: Vec::new(),
                        nan_as_true: spec.nan_as_true,
                    });
                    compiled.floats.len() - 1
                });
                compiled.floats[bin].borders.push(border);
            }
        }
        for bin in &mut compiled.floats {
            bin.borders.sort_by(f32::total_cmp);
            bin.borders.dedup();
            if bin.borders.len() >= usize::from(u16::MAX) || bin.borders.iter().any(|b| b.is_nan())
            {
                return Err("a float feature with NaN or more than 65534 borders".into());
            }
        }
        for tree in &model.trees {
            for split in tree {
                let level = compiled.level(model, &float_bins, *split)?;
                compiled.levels.push(level);
            }
            compiled.depths.push(tree.len() as u8);
        }
        for tree in &model.node_trees {
            compiled.add_node_tree(model, &float_bins, tree)?;
        }
        Ok(compiled)
    }

    /// Compiles a non-symmetric tree's nodes, checking where its walks can stop.
    fn add_node_tree(
        &mut self,
        model: &Description,
        float_bins: &[Option<usize>],
        tree: &[TreeNode],
    ) -> Result<(), String> {
        let base = self.nodes.len();
        for (position, node) in tree.iter().enumerate() {
            // A child after its parent: every walk ends.
            let child = |index: usize| match index {
                STOP => Ok(NO_CHILD),
                index if index > position && index < tree.len() => {
                    u32::try_from(base + index).map_err(|_| "too many nodes")
                }
                _ => Err("a node's child is not after it in its tree"),
            };
            let level = match node.split {
                Some(split) => self.level(model, float_bins, split)?,
                None => Level {
                    bin: 0,
                    threshold: 0,
                },
            };
            let (left, right) = match node.split {
                Some(_) => (child(node.left)?, child(node.right)?),
                None => (NO_CHILD, NO_CHILD),
            };
            let stops = left == NO_CHILD || right == NO_CHILD;
            if stops && node.leaf.saturating_add(self.dimension) > self.leaf_values.len() {
                return Err("a leaf's values are out of range".to_string());
            }
            self.nodes.push(Node {
                level,
                left,
                right,
                leaf: u32::try_from(node.leaf).map_err(|_| "a leaf's values are out of range")?,
            });
        }
        self.roots.push(base as u32);
        Ok(())
    }

    /// The level of `split`: its bin and threshold (adding a one-hot bin if it is new).
    fn level(
        &mut self,
        model: &Description,
        float_bins: &[Option<usize>],
        split: Split,
    ) -> Result<Level, String> {
        match split {
            Split::Float { feature, border } => {
                let bin = float_bins[feature].expect("every float split has its bin");
                let borders = &self.floats[bin].borders;
                let position = borders.partition_point(|&b| b < border);
                Ok(Level {
                    bin: bin as u32,
                    threshold: position as u16 + 1,
                })
            }
            Split::OneHot { feature, value } => {
                let column = model
                    .cats
                    .iter()
                    .find(|c| c.index == feature)
                    .map(|c| c.column)
                    .ok_or_else(|| {
                        format!("a split on categorical feature {feature}, which the model lacks")
                    })?;
                let cat = match self.cat_columns.iter().position(|&c| c == column) {
                    Some(cat) => cat,
                    None => {
                        self.cat_columns.push(column);
                        self.cat_columns.len() - 1
                    }
                };
                let existing = self
                    .one_hot
                    .iter()
                    .position(|bin| bin.cat == cat && bin.hash == value);
                let index = existing.unwrap_or_else(|| {
                    self.one_hot.push(OneHotBin { cat, hash: value });
                    self.one_hot.len() - 1
                });
                Ok(Level {
                    bin: (self.floats.len() + index) as u32,
                    threshold: 1,
                })
            }
        }
    }

    /// The columns a row holds.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// The values of a leaf (classes, targets).
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Whether a row's categorical values are read (the model has one-hot splits).
    pub fn reads_categories(&self) -> bool {
        !self.one_hot.is_empty()
    }

    /// The raw formula values of `rows` rows (`scale * sum + bias`), `rows × dimension`.
    /// `floats` are the rows as `f32`; `categories` the same rows as `f64`, read for the
    /// categorical columns when [`reads_categories`](Self::reads_categories).
    pub fn raw(&self, floats: &[f32], categories: &[f64], rows: usize) -> Result<Vec<f64>, Error> {
        let bins_per_row = self.floats.len() + self.one_hot.len();
        let mut bins = vec![0u16; BLOCK_ROWS * bins_per_row];
        let mut hashes = vec![0u32; BLOCK_ROWS * self.cat_columns.len()];
        let mut sums = vec![0.0f64; rows * self.dimension];
        for start in (0..rows).step_by(BLOCK_ROWS) {
            let count = BLOCK_ROWS.min(rows - start);
            for row in 0..count {
                let at = (start + row) * self.columns;
                let row_hashes =
                    &mut hashes[row * self.cat_columns.len()..][..self.cat_columns.len()];
                for (hash, &column) in row_hashes.iter_mut().zip(&self.cat_columns) {
                    *hash = hash_category(categories[at + column], column)?;
                }
                let row_bins = &mut bins[row * bins_per_row..][..bins_per_row];
                self.binarize(&floats[at..at + self.columns], row_hashes, row_bins);
            }
            let block = &mut sums[start * self.dimension..(start + count) * self.dimension];
            self.add_trees(&bins[..count * bins_per_row], bins_per_row, block);
        }
        for row in sums.chunks_exact_mut(self.dimension) {
            for (value, bias) in row.iter_mut().zip(&self.bias) {
                *value = self.scale * *value + bias;
            }
        }
        Ok(sums)
    }

    /// A row's bins: float features, then one-hot conditions.
    #[inline]
    fn binarize(&self, row: &[f32], hashes: &[u32], bins: &mut [u16]) {
        let (float_bins, one_hot_bins) = bins.split_at_mut(self.floats.len());
        for (bin, feature) in float_bins.iter_mut().zip(&self.floats) {
            let x = row[feature.column];
            *bin = if x.is_nan() {
                if feature.nan_as_true {
                    feature.borders.len() as u16
                } else {
                    0
                }
            } else {
                feature.borders.partition_point(|&border| border < x) as u16
            };
        }
        for (bin, condition) in one_hot_bins.iter_mut().zip(&self.one_hot) {
            *bin = u16::from(hashes[condition.cat] == condition.hash);
        }
    }

    /// Adds every tree's leaf for each row of a block (`bins`, `per_row` a row) to `sums`.
    fn add_trees(&self, bins: &[u16], per_row: usize, sums: &mut [f64]) {
        let dimension = self.dimension;
        let (mut level, mut leaf) = (0usize, 0usize);
        for &depth in &self.depths {
            let levels = &self.levels[level..level + usize::from(depth)];
            let leaves = &self.leaf_values[leaf..leaf + (dimension << depth)];
            for (row_bins, row_sums) in bins
                .chunks_exact(per_row)
                .zip(sums.chunks_exact_mut(dimension))
            {
                let mut index = 0usize;
                for (bit, split) in levels.iter().enumerate() {
                    let on = row_bins[split.bin as usize] >= split.threshold;
                    index |= usize::from(on) << bit;
                }
                let values = &leaves[index * dimension..(index + 1) * dimension];
                for (sum, value) in row_sums.iter_mut().zip(values) {
                    *sum += value;
                }
            }
            level += usize::from(depth);
            leaf += dimension << depth;
        }
        for &root in &self.roots {
            for (row_bins, row_sums) in bins
                .chunks_exact(per_row)
                .zip(sums.chunks_exact_mut(dimension))
            {
                let leaf = self.walk(root, row_bins) as usize;
                for (sum, value) in row_sums.iter_mut().zip(&self.leaf_values[leaf..]) {
                    *sum += value;
                }
            }
        }
    }

    /// Where the leaf values a row's walk down a non-symmetric tree ends at start. Children
    /// come after their parent, so every walk ends.
    #[inline]
    fn walk(&self, root: u32, bins: &[u16]) -> u32 {
        let mut node = &self.nodes[root as usize];
        loop {
            let level = node.level;
            let on = level.threshold == 0 || bins[level.bin as usize] >= level.threshold;
            let next = if on { node.right } else { node.left };
            if next == NO_CHILD {
                return node.leaf;
            }
            node = &self.nodes[next as usize];
        }
    }
}

/// CatBoost's hash of a categorical value given as a number: an integer, written in decimal
/// (as CatBoost writes an integer category), hashed.
fn hash_category(value: f64, column: usize) -> Result<u32, Error> {
    if !value.is_finite() || value.fract() != 0.0 || value.abs() >= 9.007_199_254_740_992e15 {
        return Err(Error::invalid_input(format!(
            "column {column} is a categorical feature: its values must be integers (CatBoost \
             reads a category as an integer or a string), got {value}"
        )));
    }
    Ok(category_hash(&(value as i64).to_string()))
}

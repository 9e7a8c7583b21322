//! CatBoost's native format (`save_model("model.cbm")`, MLServer's `model.cbm` / `model.bin`)
//! read into a [`Description`]: the bytes `CBM1`, the core's length (u32, little-endian), the
//! core as a FlatBuffers table `TModelCore` (CatBoost's `model.fbs`), then the CTR tables,
//! which are not read (models with CTRs are refused).
//!
//! The FlatBuffers reader here is just enough for that schema, every offset bounds-checked.

use super::description::{self, CatFeature, Description, FloatFeature, STOP, Split, TreeNode};
use serde_json::Value;

/// The first bytes of a `.cbm` file.
const MAGIC: &[u8; 4] = b"CBM1";

/// A FlatBuffers table in `buf` at `pos`, with its vtable.
#[derive(Clone, Copy)]
struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vtable: usize,
    vtable_len: usize,
}

const CORRUPT: &str = "the .cbm file is corrupt (an offset points outside it)";

fn bytes<const N: usize>(buf: &[u8], at: usize) -> Result<[u8; N], String> {
    at.checked_add(N)
        .and_then(|end| buf.get(at..end))
        .map(|slice| slice.try_into().expect("N bytes"))
        .ok_or_else(|| CORRUPT.to_string())
}

fn u32_at(buf: &[u8], at: usize) -> Result<usize, String> {
    Ok(u32::from_le_bytes(bytes(buf, at)?) as usize)
}

fn u16_at(buf: &[u8], at: usize) -> Result<usize, String> {
    Ok(usize::from(u16::from_le_bytes(bytes(buf, at)?)))
}

/// Follows the unsigned offset stored at `at`.
fn follow(buf: &[u8], at: usize) -> Result<usize, String> {
    at.checked_add(u32_at(buf, at)?)
        .filter(|&target| target < buf.len())
        .ok_or_else(|| CORRUPT.to_string())
}

impl<'a> Table<'a> {
    fn at(buf: &'a [u8], pos: usize) -> Result<Self, String> {
        let soffset = i64::from(i32::from_le_bytes(bytes(buf, pos)?));
        let vtable = usize::try_from(pos as i64 - soffset).map_err(|_| CORRUPT.to_string())?;
        let vtable_len = u16_at(buf, vtable)?;
        if vtable_len < 4 || vtable + vtable_len > buf.len() {
            return Err(CORRUPT.to_string());
        }
        Ok(Table {
            buf,
            pos,
            vtable,
            vtable_len,
        })
    }

    /// Where field `slot` is stored, if present.
    fn field(&self, slot: usize) -> Result<Option<usize>, String> {
        let entry = 4 + 2 * slot;
        if entry + 2 > self.vtable_len {
            return Ok(None);
        }
        match u16_at(self.buf, self.vtable + entry)? {
            0 => Ok(None),
            offset => Ok(Some(self.pos + offset)),
        }
    }

    fn i32(&self, slot: usize, default: i32) -> Result<i32, String> {
        match self.field(slot)? {
            Some(at) => Ok(i32::from_le_bytes(bytes(self.buf, at)?)),
            None => Ok(default),
        }
    }

    fn u8(&self, slot: usize, default: u8) -> Result<u8, String> {
        match self.field(slot)? {
            Some(at) => Ok(bytes::<1>(self.buf, at)?[0]),
            None => Ok(default),
        }
    }

    fn f64(&self, slot: usize, default: f64) -> Result<f64, String> {
        match self.field(slot)? {
            Some(at) => Ok(f64::from_le_bytes(bytes(self.buf, at)?)),
            None => Ok(default),
        }
    }

    fn table(&self, slot: usize) -> Result<Option<Table<'a>>, String> {
        match self.field(slot)? {
            Some(at) => Table::at(self.buf, follow(self.buf, at)?).map(Some),
            None => Ok(None),
        }
    }

    /// A vector field: where its elements start, and how many there are (`size` bytes each).
    fn vector(&self, slot: usize, size: usize) -> Result<(usize, usize), String> {
        let Some(at) = self.field(slot)? else {
            return Ok((0, 0));
        };
        let start = follow(self.buf, at)?;
        let len = u32_at(self.buf, start)?;
        len.checked_mul(size)
            .and_then(|total| total.checked_add(start + 4))
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| CORRUPT.to_string())?;
        Ok((start + 4, len))
    }

    fn scalars<const N: usize, T>(
        &self,
        slot: usize,
        read: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, String> {
        let (start, len) = self.vector(slot, N)?;
        (0..len)
            .map(|i| bytes::<N>(self.buf, start + i * N).map(read))
            .collect()
    }

    fn tables(&self, slot: usize) -> Result<Vec<Table<'a>>, String> {
        let (start, len) = self.vector(slot, 4)?;
        (0..len)
            .map(|i| Table::at(self.buf, follow(self.buf, start + i * 4)?))
            .collect()
    }

    fn string(&self, slot: usize) -> Result<Option<&'a str>, String> {
        let Some(at) = self.field(slot)? else {
            return Ok(None);
        };
        let start = follow(self.buf, at)?;
        let len = u32_at(self.buf, start)?;
        let text = (start + 4)
            .checked_add(len)
            .and_then(|end| self.buf.get(start + 4..end))
            .ok_or_else(|| CORRUPT.to_string())?;
        std::str::from_utf8(text)
            .map(Some)
            .map_err(|_| "the .cbm file holds a string that is not UTF-8".to_string())
    }
}

// Fields of CatBoost's `model.fbs` and `features.fbs`, by slot.
mod slot {
    pub const CORE_TREES: usize = 1;
    pub const CORE_INFO: usize = 2;
    pub const TREE_SPLITS: usize = 1;
    pub const TREE_SIZES: usize = 2;
    pub const TREE_STARTS: usize = 3;
    pub const CAT_FEATURES: usize = 4;
    pub const FLOAT_FEATURES: usize = 5;
    pub const ONE_HOT_FEATURES: usize = 6;
    pub const CTR_FEATURES: usize = 7;
    pub const LEAF_VALUES: usize = 8;
    pub const NON_SYMMETRIC_STEPS: usize = 10;
    pub const NODE_TO_LEAF: usize = 11;
    pub const TEXT_FEATURES: usize = 12;
    pub const ESTIMATED_FEATURES: usize = 13;
    pub const SCALE: usize = 14;
    pub const BIAS: usize = 15;
    pub const MULTI_BIAS: usize = 16;
    pub const EMBEDDING_FEATURES: usize = 18;
}

/// Reads a `.cbm` file's bytes; returns the description and the number of CTR features.
pub fn read(file: &[u8]) -> Result<(Description, usize), String> {
    if !file.starts_with(MAGIC) {
        return Err("not a CatBoost .cbm file (it does not start with CBM1)".to_string());
    }
    let size = u32_at(file, 4).map_err(|_| "the .cbm file is truncated".to_string())?;
    let core = file
        .get(8..8 + size)
        .ok_or("the .cbm file is truncated (shorter than its core's length)")?;
    let root = Table::at(core, u32_at(core, 0)?)?;
    let trees = root
        .table(slot::CORE_TREES)?
        .ok_or("the .cbm file has no trees (a model from a CatBoost older than 0.9?)")?;
    let mut model = Description::default();
    read_info(&root, &mut model)?;
    let (binary, ctrs) = read_features(&trees, &mut model)?;
    for (slot, what) in [
        (slot::TEXT_FEATURES, "text features"),
        (slot::EMBEDDING_FEATURES, "embedding features"),
        (slot::ESTIMATED_FEATURES, "estimated features"),
    ] {
        if trees.vector(slot, 4)?.1 > 0 {
            model.unsupported.push(what.to_string());
        }
    }
    model.scale = trees.f64(slot::SCALE, 1.0)?;
    let multi_bias = trees.scalars(slot::MULTI_BIAS, f64::from_le_bytes)?;
    model.bias = if multi_bias.is_empty() {
        vec![trees.f64(slot::BIAS, 0.0)?]
    } else {
        multi_bias
    };
    if model.unsupported.is_empty() && ctrs == 0 {
        if trees.vector(slot::NON_SYMMETRIC_STEPS, 4)?.1 > 0 {
            read_node_trees(&trees, &binary, &mut model)?;
        } else {
            read_trees(&trees, &binary, &mut model)?;
        }
    }
    Ok((model, ctrs))
}

/// `InfoMap`'s `params`, `class_params` and `binclass_probability_threshold` (JSON text).
fn read_info(root: &Table, model: &mut Description) -> Result<(), String> {
    let mut params = None;
    let mut class_params = None;
    let mut threshold = None;
    for entry in root.tables(slot::CORE_INFO)? {
        let parsed = || -> Result<Option<Value>, String> {
            Ok(entry
                .string(1)?
                .and_then(|text| serde_json::from_str(text).ok()))
        };
        match entry.string(0)? {
            Some("params") => params = parsed()?,
            Some("class_params") => class_params = parsed()?,
            Some("binclass_probability_threshold") => threshold = parsed()?,
            _ => {}
        }
    }
    model.read_info(params.as_ref(), class_params.as_ref(), threshold.as_ref());
    Ok(())
}

/// The features, and the binary features a tree split names (by index): every float border,
/// then every one-hot value, in CatBoost's order. Returns them and the number of CTRs.
fn read_features(trees: &Table, model: &mut Description) -> Result<(Vec<Split>, usize), String> {
    let mut binary = Vec::new();
    for feature in trees.tables(slot::FLOAT_FEATURES)? {
        let index = feature.i32(1, -1)?;
        let column = feature.i32(2, -1)?;
        let (Ok(index), Ok(column)) = (usize::try_from(index), usize::try_from(column)) else {
            return Err("a float feature without its index".to_string());
        };
        model.floats.push(FloatFeature {
            index,
            column,
            nan_as_true: feature.u8(5, 0)? == 2,
            name: feature.string(4)?.unwrap_or_default().to_string(),
        });
        for border in feature.scalars(3, f32::from_le_bytes)? {
            binary.push(Split::Float {
                feature: index,
                border,
            });
        }
    }
    let one_hot = trees.tables(slot::ONE_HOT_FEATURES)?;
    let one_hot_indices: Vec<i32> = one_hot
        .iter()
        .map(|feature| feature.i32(0, -1))
        .collect::<Result<_, _>>()?;
    for feature in trees.tables(slot::CAT_FEATURES)? {
        let index = feature.i32(0, -1)?;
        let (Ok(position), Ok(column)) =
            (usize::try_from(index), usize::try_from(feature.i32(1, -1)?))
        else {
            return Err("a categorical feature without its index".to_string());
        };
        model.cats.push(CatFeature {
            index: position,
            column,
            name: feature.string(2)?.unwrap_or_default().to_string(),
            one_hot: one_hot_indices.contains(&index),
        });
    }
    for (feature, &index) in one_hot.iter().zip(&one_hot_indices) {
        let index = usize::try_from(index).map_err(|_| "a one-hot feature without its index")?;
        for value in feature.scalars(1, i32::from_le_bytes)? {
            binary.push(Split::OneHot {
                feature: index,
                value: value as u32,
            });
        }
    }
    let mut flat: Vec<usize> = model.floats.iter().map(|f| f.column).collect();
    flat.extend(model.cats.iter().map(|c| c.column));
    for slot in [slot::TEXT_FEATURES, slot::EMBEDDING_FEATURES] {
        for feature in trees.tables(slot)? {
            flat.extend(usize::try_from(feature.i32(1, -1)?).ok());
        }
    }
    model.columns = description::columns(&flat)?;
    Ok((binary, trees.vector(slot::CTR_FEATURES, 4)?.1))
}

/// `TreeSplits` (binary feature indices, tree after tree, `TreeSizes` of them each) and
/// `LeafValues`.
fn read_trees(trees: &Table, binary: &[Split], model: &mut Description) -> Result<(), String> {
    let splits = trees.scalars(slot::TREE_SPLITS, i32::from_le_bytes)?;
    let sizes = trees.scalars(slot::TREE_SIZES, i32::from_le_bytes)?;
    model.leaf_values = trees.scalars(slot::LEAF_VALUES, f64::from_le_bytes)?;
    let mut next = 0usize;
    let mut leaves = 0usize;
    for (number, &size) in sizes.iter().enumerate() {
        let depth = usize::try_from(size)
            .ok()
            .filter(|&depth| depth <= 16)
            .ok_or_else(|| format!("tree {number} has depth {size}"))?;
        let tree = splits
            .get(next..next + depth)
            .ok_or_else(|| format!("tree {number}: its splits are missing"))?
            .iter()
            .map(|&split| {
                usize::try_from(split)
                    .ok()
                    .and_then(|i| binary.get(i).copied())
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("tree {number} names a split the model does not have"))?;
        next += depth;
        leaves += 1 << depth;
        model.trees.push(tree);
    }
    let dimension = model
        .leaf_values
        .len()
        .checked_div(leaves)
        .unwrap_or(model.bias.len().max(1));
    if dimension == 0 || dimension * leaves != model.leaf_values.len() {
        return Err(format!(
            "{} leaf values for trees of {leaves} leaves",
            model.leaf_values.len()
        ));
    }
    model.dimension = dimension;
    Ok(())
}

/// Non-symmetric trees: tree `t`'s nodes are `TreeSizes[t]` entries from `TreeStartOffsets[t]`
/// of `TreeSplits` (the condition), `NonSymmetricStepNodes` (how far ahead the false and true
/// children are; 0: the walk stops at this node) and `NonSymmetricNodeIdToLeafId` (where the
/// node's leaf values start).
fn read_node_trees(trees: &Table, binary: &[Split], model: &mut Description) -> Result<(), String> {
    let splits = trees.scalars(slot::TREE_SPLITS, i32::from_le_bytes)?;
    let sizes = trees.scalars(slot::TREE_SIZES, i32::from_le_bytes)?;
    let starts = trees.scalars(slot::TREE_STARTS, i32::from_le_bytes)?;
    let steps = trees.scalars(slot::NON_SYMMETRIC_STEPS, |b: [u8; 4]| {
        let left = usize::from(u16::from_le_bytes([b[0], b[1]]));
        (left, usize::from(u16::from_le_bytes([b[2], b[3]])))
    })?;
    let leaves = trees.scalars(slot::NODE_TO_LEAF, u32::from_le_bytes)?;
    model.leaf_values = trees.scalars(slot::LEAF_VALUES, f64::from_le_bytes)?;
    model.dimension = usize::try_from(trees.i32(0, 1)?)
        .ok()
        .filter(|&d| d > 0)
        .ok_or("the model's approx dimension is not positive")?;
    for (number, (&start, &size)) in starts.iter().zip(&sizes).enumerate() {
        let bad = || format!("tree {number}'s nodes are out of range");
        let start = usize::try_from(start).map_err(|_| bad())?;
        let size = usize::try_from(size).map_err(|_| bad())?;
        let mut nodes = Vec::with_capacity(size.min(steps.len()));
        for node in start..start.checked_add(size).ok_or_else(bad)? {
            let (&(left, right), &leaf) = steps.get(node).zip(leaves.get(node)).ok_or_else(bad)?;
            let child = |diff: usize| match diff {
                0 => Ok(STOP),
                diff if node - start + diff < size => Ok(node - start + diff),
                _ => Err(bad()),
            };
            let split = if left == 0 && right == 0 {
                None
            } else {
                let index = splits.get(node).and_then(|&i| usize::try_from(i).ok());
                Some(*index.and_then(|i| binary.get(i)).ok_or_else(bad)?)
            };
            nodes.push(TreeNode {
                split,
                left: child(left)?,
                right: child(right)?,
                leaf: leaf as usize,
            });
        }
        model.node_trees.push(nodes);
    }
    Ok(())
}

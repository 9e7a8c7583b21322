//! The layout of LightGBM's text format: a `tree` line, the header's `key=value` lines and
//! bare flags (`average_output`), then one block of `key=value` lines per `Tree=` line, up to
//! `end of trees`.

use std::collections::HashMap;

/// A model file cut into its parts, borrowing the text.
pub(super) struct Sections<'a> {
    /// The header's `key=value` lines.
    pub header: HashMap<&'a str, &'a str>,
    /// Lines without `=` (the header's flags, such as `average_output`).
    pub flags: Vec<&'a str>,
    /// The `Tree=` blocks, in order.
    pub trees: Vec<TreeBlock<'a>>,
}

impl<'a> Sections<'a> {
    /// Cuts `text` into its header and its trees; the trees must be numbered in order.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let text = text.split("end of trees").next().unwrap_or("");
        let mut lines = text.lines().map(str::trim);
        if lines.next() != Some("tree") {
            return Err("not a LightGBM text model: the first line is not 'tree'".to_string());
        }
        let mut sections = Sections {
            header: HashMap::new(),
            flags: Vec::new(),
            trees: Vec::new(),
        };
        for line in lines.filter(|line| !line.is_empty()) {
            sections.add_line(line)?;
        }
        Ok(sections)
    }

    /// Files one non-empty line: a flag, a new tree, or a field of the header or last tree.
    fn add_line(&mut self, line: &'a str) -> Result<(), String> {
        let Some((key, value)) = line.split_once('=') else {
            self.flags.push(line);
            return Ok(());
        };
        if key == "Tree" {
            let index = value
                .parse::<usize>()
                .map_err(|_| format!("'{line}' does not number a tree"))?;
            if index != self.trees.len() {
                return Err(format!(
                    "tree {index} comes at position {}",
                    self.trees.len()
                ));
            }
            self.trees.push(TreeBlock {
                index,
                fields: HashMap::new(),
            });
        } else if let Some(tree) = self.trees.last_mut() {
            tree.fields.insert(key, value);
        } else {
            self.header.insert(key, value);
        }
        Ok(())
    }
}

/// One `Tree=` block: its `key=value` lines.
pub(super) struct TreeBlock<'a> {
    /// The tree's number (its position).
    pub index: usize,
    pub fields: HashMap<&'a str, &'a str>,
}

impl<'a> TreeBlock<'a> {
    /// The value of `key`, which the tree must have.
    pub fn field(&self, key: &str) -> Result<&'a str, String> {
        self.fields
            .get(key)
            .copied()
            .ok_or_else(|| format!("tree {} has no {key}", self.index))
    }

    /// The `length` values of `key`, separated by spaces (an empty array may be absent).
    pub fn array<T: std::str::FromStr>(&self, key: &str, length: usize) -> Result<Vec<T>, String> {
        let text = if length == 0 {
            self.fields.get(key).copied().unwrap_or("")
        } else {
            self.field(key)?
        };
        let values = text
            .split_whitespace()
            .map(|word| {
                word.parse::<T>()
                    .map_err(|_| format!("tree {}: {key} holds '{word}'", self.index))
            })
            .collect::<Result<Vec<T>, String>>()?;
        if values.len() != length {
            return Err(format!(
                "tree {}: {key} has {} values, expected {length}",
                self.index,
                values.len()
            ));
        }
        Ok(values)
    }
}

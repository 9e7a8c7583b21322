//! The world's exports: the component must export each of its interfaces, in a compatible
//! version, with every function of the same type.

use super::compare::Check;
use super::names::{compatible_versions, interface_label, package_version, same_interface_name};
use super::render::describe_function;
use wit_parser::{InterfaceId, WorldId, WorldItem};

impl Check<'_> {
    /// Checks every export of the world; returns the version of `mlhost:runtime` the component
    /// exports, when it exports the world's interfaces at all.
    pub(super) fn exports(
        &self,
        wanted_world: WorldId,
        found_world: WorldId,
        problems: &mut Vec<String>,
    ) -> Option<String> {
        let mut version = None;
        for item in self.wanted.worlds[wanted_world].exports.values() {
            let WorldItem::Interface { id: wanted, .. } = item else {
                continue;
            };
            if let Some(found) = self.export(*wanted, found_world, problems) {
                version = Some(found);
            }
        }
        version
    }

    /// Checks the export of the world's interface `wanted`; returns the version of its package
    /// the component exports, when it exports a compatible one.
    fn export(
        &self,
        wanted: InterfaceId,
        found_world: WorldId,
        problems: &mut Vec<String>,
    ) -> Option<String> {
        let found = self.found.worlds[found_world]
            .exports
            .values()
            .filter_map(|item| match item {
                WorldItem::Interface { id, .. } => Some(*id),
                _ => None,
            })
            .find(|id| same_interface_name(self.wanted, wanted, self.found, *id));
        let Some(found) = found else {
            problems.push(self.missing_export(wanted, found_world));
            return None;
        };
        let found_label = interface_label(self.found, found, true);
        if !compatible_versions(self.wanted, wanted, self.found, found) {
            problems.push(format!(
                "the component exports `{found_label}`, which this mlhost cannot call: it \
                 serves `{}` (rebuild the runtime against this version's WIT)",
                interface_label(self.wanted, wanted, true)
            ));
            return None;
        }
        let version = package_version(self.found, found);
        let found_functions = &self.found.interfaces[found].functions;
        for (name, function) in &self.wanted.interfaces[wanted].functions {
            match found_functions.get(name) {
                None => problems.push(format!(
                    "missing export: `{found_label}` has no {} (`{name}`)",
                    describe_function(self.wanted, function)
                )),
                Some(found_function) => {
                    if let Some(difference) = self.function_difference(function, found_function) {
                        problems.push(format!(
                            "mismatched export: in `{found_label}`, the {} {difference}",
                            describe_function(self.wanted, function)
                        ));
                    }
                }
            }
        }
        version
    }

    /// The problem of a component that does not export `wanted`, naming what it exports.
    fn missing_export(&self, wanted: InterfaceId, found_world: WorldId) -> String {
        let exported: Vec<String> = self.found.worlds[found_world]
            .exports
            .keys()
            .map(|key| format!("`{}`", self.found.name_world_key(key)))
            .collect();
        format!(
            "missing export: the component does not export the interface `{}` (it exports {}); \
             a runtime implements world `mlhost:runtime/runtime` (in Rust: \
             `mlhost_guest::export_model!(YourModel)`)",
            interface_label(self.wanted, wanted, false),
            if exported.is_empty() {
                "nothing".to_string()
            } else {
                exported.join(", ")
            }
        )
    }
}

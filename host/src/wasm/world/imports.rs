//! The component's imports: each must be one the server provides — mlhost's own interfaces in
//! a compatible version with functions of the same types, or WASI 0.2's provided packages.

use super::compare::Check;
use super::names::{compatible_versions, package_version, same_interface_name};
use wit_parser::{InterfaceId, WorldId, WorldItem};

/// WASI 0.2 packages the server links (with their files, sockets and environment locked down).
const PROVIDED_WASI_PACKAGES: &[&str] = &["cli", "clocks", "filesystem", "io", "random", "sockets"];

impl Check<'_> {
    /// Checks that every import is one the server provides; returns their names.
    pub(super) fn imports(
        &self,
        wanted_world: WorldId,
        found_world: WorldId,
        problems: &mut Vec<String>,
    ) -> Vec<String> {
        let mut names = Vec::new();
        for (key, item) in &self.found.worlds[found_world].imports {
            let name = self.found.name_world_key(key);
            let id = match item {
                WorldItem::Interface { id, .. } => *id,
                WorldItem::Function(function) => {
                    problems.push(format!(
                        "unknown import: the component imports the function `{}`, which mlhost \
                         does not provide",
                        function.name
                    ));
                    continue;
                }
                WorldItem::Type(_) => continue,
            };
            names.push(name.clone());
            self.import(&name, id, wanted_world, problems);
        }
        names
    }

    /// Checks the import `name` of the component's interface `id`, by its package.
    fn import(
        &self,
        name: &str,
        id: InterfaceId,
        wanted_world: WorldId,
        problems: &mut Vec<String>,
    ) {
        let Some(package) = self.found.interfaces[id].package else {
            return;
        };
        let package_name = &self.found.packages[package].name;
        let version_major_minor = package_name
            .version
            .as_ref()
            .map(|version| (version.major, version.minor));
        match (package_name.namespace.as_str(), package_name.name.as_str()) {
            ("mlhost", "runtime") => self.mlhost_import(name, id, wanted_world, problems),
            ("wasi", package)
                if PROVIDED_WASI_PACKAGES.contains(&package)
                    && version_major_minor
                        .is_some_and(|(major, minor)| major == 0 && minor == 2) => {}
            ("wasi", "http") => problems.push(format!(
                "unknown import: the component imports `{name}`: runtimes have no network, \
                 and mlhost does not provide wasi:http (for JavaScript, componentize with \
                 `--disable http`)"
            )),
            _ => problems.push(format!(
                "unknown import: the component imports `{name}`, which mlhost does not \
                 provide (it provides mlhost:runtime/host and WASI 0.2's {})",
                PROVIDED_WASI_PACKAGES.join(", ")
            )),
        }
    }

    /// Checks an import of mlhost's own package: an interface of the world (or one whose types
    /// it uses) in a compatible version, each function imported with the world's type.
    fn mlhost_import(
        &self,
        name: &str,
        id: InterfaceId,
        wanted_world: WorldId,
        problems: &mut Vec<String>,
    ) {
        let world = &self.wanted.worlds[wanted_world];
        let wanted = world
            .imports
            .values()
            .chain(world.exports.values())
            .filter_map(|item| match item {
                WorldItem::Interface { id, .. } => Some(*id),
                _ => None,
            })
            .flat_map(|id| self.used_interfaces(id))
            .find(|wanted| same_interface_name(self.wanted, *wanted, self.found, id));
        let Some(wanted) =
            wanted.filter(|wanted| compatible_versions(self.wanted, *wanted, self.found, id))
        else {
            problems.push(format!(
                "unknown import: the component imports `{name}`, which this mlhost does not \
                 provide (it provides mlhost:runtime@{})",
                package_version(self.wanted, self.wanted_host(wanted_world)).unwrap_or_default()
            ));
            return;
        };
        for (function_name, function) in &self.found.interfaces[id].functions {
            match self.wanted.interfaces[wanted].functions.get(function_name) {
                None => problems.push(format!(
                    "unknown import: the component imports `{name}` function `{function_name}`, \
                     which this mlhost does not provide (built against a newer mlhost:runtime?)"
                )),
                Some(wanted_function) => {
                    if let Some(difference) = self.function_difference(wanted_function, function) {
                        problems.push(format!(
                            "mismatched import: `{name}` function `{function_name}` {difference}"
                        ));
                    }
                }
            }
        }
    }
}

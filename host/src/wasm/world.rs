//! Checks that a component implements mlhost's WIT world, naming what is missing or different.
//!
//! The check reads the component's own type information (`wit-parser` decodes it without
//! compiling anything), so it is instant even for a 40 MB Python component. It compares against
//! the WIT package compiled into this binary: every export of the world must be there with the
//! same types, and every import must be one the server provides (mlhost's `host` interface and
//! WASI 0.2's cli, clocks, filesystem, io, random and sockets). The server's own check when it
//! loads a component runs this check first (so that a wrong component is refused in these words
//! before a long compile), then wasmtime's own type check, the last word; `mlhost build
//! --precompile` runs both.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use wit_parser::decoding::DecodedWasm;
use wit_parser::{
    Function, FunctionKind, Handle, InterfaceId, Resolve, Type, TypeDefKind, WorldId, WorldItem,
};

/// The WIT package of the runtime world, as this binary was built with it.
pub const RUNTIME_WIT: &str = include_str!("../../../wit/runtime.wit");

/// WASI 0.2 packages the server links (with their files, sockets and environment locked down).
const PROVIDED_WASI_PACKAGES: &[&str] = &["cli", "clocks", "filesystem", "io", "random", "sockets"];

/// What a component that passed the check implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldReport {
    /// The version of `mlhost:runtime` the component was built against.
    pub version: String,
    /// The interfaces the component imports, e.g. `wasi:filesystem/types@0.2.3`.
    pub imports: Vec<String>,
}

/// Checks `bytes` against the runtime world; the error lists every problem, one per line.
pub fn check_component(bytes: &[u8]) -> Result<WorldReport, String> {
    if !is_component(bytes) {
        return Err(if bytes.starts_with(b"\0asm") {
            "this is a core WebAssembly module, not a component: build for the wasm32-wasip2 \
             target (or run it through a componentizer)"
                .to_string()
        } else {
            "this is not a WebAssembly file".to_string()
        });
    }
    let (found, found_world) = match wit_parser::decoding::decode(bytes) {
        Ok(DecodedWasm::Component(resolve, world)) => (resolve, world),
        Ok(DecodedWasm::WitPackage(..)) => {
            return Err("this is a WIT package encoded as wasm, not a runtime component".into());
        }
        Err(error) => return Err(format!("cannot read the component's types: {error:#}")),
    };
    let (wanted, wanted_world) = runtime_world();
    let check = Check {
        wanted: &wanted,
        found: &found,
    };
    let mut problems = Vec::new();
    let version = check.exports(wanted_world, found_world, &mut problems);
    let imports = check.imports(wanted_world, found_world, &mut problems);
    match version {
        Some(version) if problems.is_empty() => Ok(WorldReport { version, imports }),
        _ => Err(problems.join("\n")),
    }
}

/// The version of the `mlhost:runtime` package this binary serves, e.g. `0.1.1`.
pub fn runtime_version() -> String {
    let (resolve, world) = runtime_world();
    let package = resolve.worlds[world]
        .package
        .expect("the world is in a package");
    resolve.packages[package]
        .name
        .version
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// The runtime world parsed from [`RUNTIME_WIT`].
fn runtime_world() -> (Resolve, WorldId) {
    let mut resolve = Resolve::default();
    let package = resolve
        .push_str("runtime.wit", RUNTIME_WIT)
        .expect("the built-in WIT parses");
    let world = resolve
        .select_world(&[package], Some("runtime"))
        .expect("the built-in WIT has world `runtime`");
    (resolve, world)
}

/// Whether `bytes` start with the header of a component (layer 1), not of a core module.
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[6..8] == [1, 0]
}

/// The two sides of the comparison: the world as this binary has it, and the component's.
struct Check<'a> {
    wanted: &'a Resolve,
    found: &'a Resolve,
}

impl Check<'_> {
    /// Checks every export of the world; returns the version of `mlhost:runtime` the component
    /// exports, when it exports the world's interfaces at all.
    fn exports(
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
            let label = interface_label(self.wanted, *wanted, false);
            let found = self.found.worlds[found_world]
                .exports
                .values()
                .filter_map(|item| match item {
                    WorldItem::Interface { id, .. } => Some(*id),
                    _ => None,
                })
                .find(|id| same_interface_name(self.wanted, *wanted, self.found, *id));
            let Some(found) = found else {
                let exported: Vec<String> = self.found.worlds[found_world]
                    .exports
                    .keys()
                    .map(|key| format!("`{}`", self.found.name_world_key(key)))
                    .collect();
                problems.push(format!(
                    "missing export: the component does not export the interface `{label}` \
                     (it exports {}); a runtime implements world `mlhost:runtime/runtime` \
                     (in Rust: `mlhost_guest::export_model!(YourModel)`)",
                    if exported.is_empty() {
                        "nothing".to_string()
                    } else {
                        exported.join(", ")
                    }
                ));
                continue;
            };
            let found_label = interface_label(self.found, found, true);
            if !compatible_versions(self.wanted, *wanted, self.found, found) {
                problems.push(format!(
                    "the component exports `{found_label}`, which this mlhost cannot call: it \
                     serves `{}` (rebuild the runtime against this version's WIT)",
                    interface_label(self.wanted, *wanted, true)
                ));
                continue;
            }
            version = package_version(self.found, found);
            let wanted_functions = &self.wanted.interfaces[*wanted].functions;
            let found_functions = &self.found.interfaces[found].functions;
            for (name, function) in wanted_functions {
                match found_functions.get(name) {
                    None => problems.push(format!(
                        "missing export: `{found_label}` has no {} (`{name}`)",
                        describe_function(self.wanted, function)
                    )),
                    Some(found_function) => {
                        if let Some(difference) = self.function_difference(function, found_function)
                        {
                            problems.push(format!(
                                "mismatched export: in `{found_label}`, the {} {difference}",
                                describe_function(self.wanted, function)
                            ));
                        }
                    }
                }
            }
        }
        version
    }

    /// Checks that every import is one the server provides; returns their names.
    fn imports(
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
            let Some(package) = self.found.interfaces[id].package else {
                continue;
            };
            let package_name = &self.found.packages[package].name;
            let version_major_minor = package_name
                .version
                .as_ref()
                .map(|version| (version.major, version.minor));
            match (package_name.namespace.as_str(), package_name.name.as_str()) {
                ("mlhost", "runtime") => {
                    let wanted = self.wanted.worlds[wanted_world]
                        .imports
                        .values()
                        .chain(self.wanted.worlds[wanted_world].exports.values())
                        .filter_map(|item| match item {
                            WorldItem::Interface { id, .. } => Some(*id),
                            _ => None,
                        })
                        .flat_map(|id| self.used_interfaces(id))
                        .find(|wanted| same_interface_name(self.wanted, *wanted, self.found, id));
                    let Some(wanted) = wanted
                        .filter(|wanted| compatible_versions(self.wanted, *wanted, self.found, id))
                    else {
                        problems.push(format!(
                            "unknown import: the component imports `{name}`, which this mlhost \
                             does not provide (it provides mlhost:runtime@{})",
                            package_version(self.wanted, self.wanted_host(wanted_world))
                                .unwrap_or_default()
                        ));
                        continue;
                    };
                    for (function_name, function) in &self.found.interfaces[id].functions {
                        match self.wanted.interfaces[wanted].functions.get(function_name) {
                            None => problems.push(format!(
                                "unknown import: the component imports `{name}` function \
                                 `{function_name}`, which this mlhost does not provide (built \
                                 against a newer mlhost:runtime?)"
                            )),
                            Some(wanted_function) => {
                                if let Some(difference) =
                                    self.function_difference(wanted_function, function)
                                {
                                    problems.push(format!(
                                        "mismatched import: `{name}` function `{function_name}` \
                                         {difference}"
                                    ));
                                }
                            }
                        }
                    }
                }
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
        names
    }

    /// The `host` interface of the world (for messages).
    fn wanted_host(&self, world: WorldId) -> InterfaceId {
        self.wanted.worlds[world]
            .imports
            .values()
            .find_map(|item| match item {
                WorldItem::Interface { id, .. }
                    if self.wanted.interfaces[*id].name.as_deref() == Some("host") =>
                {
                    Some(*id)
                }
                _ => None,
            })
            .expect("the runtime world imports `host`")
    }

    /// `interface` and the interfaces whose types it uses (`types` for `host` and `model`).
    fn used_interfaces(&self, interface: InterfaceId) -> Vec<InterfaceId> {
        let mut interfaces = vec![interface];
        for type_id in self.wanted.interfaces[interface].types.values() {
            if let TypeDefKind::Type(Type::Id(target)) = self.wanted.types[*type_id].kind
                && let wit_parser::TypeOwner::Interface(owner) = self.wanted.types[target].owner
                && !interfaces.contains(&owner)
            {
                interfaces.push(owner);
            }
        }
        interfaces
    }

    /// How `found` differs from `wanted`, in words; `None` when they are the same.
    fn function_difference(&self, wanted: &Function, found: &Function) -> Option<String> {
        let wanted_shape = function_shape(self.wanted, wanted);
        let found_shape = function_shape(self.found, found);
        if wanted_shape == found_shape {
            return None;
        }
        let mut message = format!(
            "has type `{}` where the world has `{}`",
            function_signature(self.found, found),
            function_signature(self.wanted, wanted)
        );
        let wanted_types = named_types(self.wanted, wanted);
        let found_types = named_types(self.found, found);
        for (name, shape) in &wanted_types {
            match found_types.get(name) {
                Some(found_shape) if found_shape != shape => {
                    let _ = write!(
                        message,
                        "; its type `{name}` is `{found_shape}` where the world's is `{shape}`"
                    );
                }
                _ => {}
            }
        }
        Some(message)
    }
}

/// `namespace:package/interface@version`, or without the version.
fn interface_label(resolve: &Resolve, interface: InterfaceId, with_version: bool) -> String {
    let iface = &resolve.interfaces[interface];
    let name = iface.name.as_deref().unwrap_or("<anonymous>");
    match iface.package {
        Some(package) => {
            let package = &resolve.packages[package].name;
            let mut label = format!("{}:{}/{name}", package.namespace, package.name);
            if let (true, Some(version)) = (with_version, &package.version) {
                let _ = write!(label, "@{version}");
            }
            label
        }
        None => name.to_string(),
    }
}

fn package_version(resolve: &Resolve, interface: InterfaceId) -> Option<String> {
    let package = resolve.interfaces[interface].package?;
    resolve.packages[package]
        .name
        .version
        .as_ref()
        .map(ToString::to_string)
}

/// Same namespace, package and interface name, whatever the versions.
fn same_interface_name(a: &Resolve, a_id: InterfaceId, b: &Resolve, b_id: InterfaceId) -> bool {
    let (a_iface, b_iface) = (&a.interfaces[a_id], &b.interfaces[b_id]);
    let (Some(a_package), Some(b_package)) = (a_iface.package, b_iface.package) else {
        return false;
    };
    let (a_name, b_name) = (&a.packages[a_package].name, &b.packages[b_package].name);
    a_iface.name == b_iface.name
        && a_name.namespace == b_name.namespace
        && a_name.name == b_name.name
}

/// Semver-compatible versions, as wasmtime matches them: the same major version (for 0.x, the
/// same minor; for 0.0.x and pre-releases, the very same version).
fn compatible_versions(a: &Resolve, a_id: InterfaceId, b: &Resolve, b_id: InterfaceId) -> bool {
    let version = |resolve: &Resolve, id: InterfaceId| {
        resolve.interfaces[id]
            .package
            .and_then(|package| resolve.packages[package].name.version.clone())
    };
    match (version(a, a_id), version(b, b_id)) {
        (Some(a), Some(b)) => compatible(&a, &b),
        (None, None) => true,
        _ => false,
    }
}

fn compatible(a: &semver::Version, b: &semver::Version) -> bool {
    if a == b {
        return true;
    }
    if !a.pre.is_empty() || !b.pre.is_empty() {
        return false;
    }
    match (a.major, b.major) {
        (0, 0) => a.minor != 0 && a.minor == b.minor,
        (a_major, b_major) => a_major == b_major,
    }
}

/// "method `predict` of resource `model`", "function `add-output`", ...
fn describe_function(resolve: &Resolve, function: &Function) -> String {
    let resource = |id: TypeId| {
        resolve.types[id]
            .name
            .clone()
            .unwrap_or_else(|| "<anonymous>".into())
    };
    let short = function
        .name
        .rsplit_once('.')
        .map_or(function.name.as_str(), |(_, name)| name);
    match &function.kind {
        FunctionKind::Method(id) | FunctionKind::AsyncMethod(id) => {
            format!("method `{short}` of resource `{}`", resource(*id))
        }
        FunctionKind::Static(id) | FunctionKind::AsyncStatic(id) => {
            format!("static function `{short}` of resource `{}`", resource(*id))
        }
        FunctionKind::Constructor(id) => format!("constructor of resource `{}`", resource(*id)),
        FunctionKind::Freestanding | FunctionKind::AsyncFreestanding => {
            format!("function `{}`", function.name)
        }
    }
}

use wit_parser::TypeId;

/// The function's full structure, for comparison (type names do not matter, only shapes).
fn function_shape(resolve: &Resolve, function: &Function) -> String {
    // Parameter names are not part of a function's type (wasmtime compares the types only).
    let params: Vec<String> = function
        .params
        .iter()
        .map(|(_, ty)| shape(resolve, ty))
        .collect();
    let result = function
        .result
        .as_ref()
        .map(|ty| shape(resolve, ty))
        .unwrap_or_default();
    let asynchronous = matches!(
        function.kind,
        FunctionKind::AsyncFreestanding
            | FunctionKind::AsyncMethod(_)
            | FunctionKind::AsyncStatic(_)
    );
    format!(
        "{}({}) -> {result}",
        if asynchronous { "async " } else { "" },
        params.join(", ")
    )
}

/// The function as WIT writes it, with type names: `func(request: inference-request) -> ...`.
fn function_signature(resolve: &Resolve, function: &Function) -> String {
    let params: Vec<String> = function
        .params
        .iter()
        .filter(|(name, _)| {
            // A method's first parameter is the implicit `self`.
            !(matches!(
                function.kind,
                FunctionKind::Method(_) | FunctionKind::AsyncMethod(_)
            ) && name == "self")
        })
        .map(|(name, ty)| format!("{name}: {}", short(resolve, ty)))
        .collect();
    match &function.result {
        Some(ty) => format!("func({}) -> {}", params.join(", "), short(resolve, ty)),
        None => format!("func({})", params.join(", ")),
    }
}

/// A type's structure, all the way down; names of records, variants and enums are left out
/// (the component model compares structure), field and case names are kept.
fn shape(resolve: &Resolve, ty: &Type) -> String {
    let Type::Id(id) = ty else {
        return primitive(ty).to_string();
    };
    let def = &resolve.types[*id];
    let list = |types: &mut dyn Iterator<Item = String>| types.collect::<Vec<_>>().join(", ");
    match &def.kind {
        TypeDefKind::Record(record) => format!(
            "record {{{}}}",
            list(&mut record.fields.iter().map(|field| format!(
                "{}: {}",
                field.name,
                shape(resolve, &field.ty)
            )))
        ),
        TypeDefKind::Resource => format!("resource {}", def.name.as_deref().unwrap_or("_")),
        TypeDefKind::Handle(Handle::Own(target)) => {
            format!("own<{}>", shape(resolve, &Type::Id(*target)))
        }
        TypeDefKind::Handle(Handle::Borrow(target)) => {
            format!("borrow<{}>", shape(resolve, &Type::Id(*target)))
        }
        TypeDefKind::Flags(flags) => format!(
            "flags {{{}}}",
            list(&mut flags.flags.iter().map(|flag| flag.name.clone()))
        ),
        TypeDefKind::Tuple(tuple) => format!(
            "tuple<{}>",
            list(&mut tuple.types.iter().map(|ty| shape(resolve, ty)))
        ),
        TypeDefKind::Variant(variant) => format!(
            "variant {{{}}}",
            list(&mut variant.cases.iter().map(|case| match &case.ty {
                Some(ty) => format!("{}({})", case.name, shape(resolve, ty)),
                None => case.name.clone(),
            }))
        ),
        TypeDefKind::Enum(cases) => format!(
            "enum {{{}}}",
            list(&mut cases.cases.iter().map(|case| case.name.clone()))
        ),
        TypeDefKind::Option(ty) => format!("option<{}>", shape(resolve, ty)),
        TypeDefKind::Result(result) => format!(
            "result<{}, {}>",
            result
                .ok
                .as_ref()
                .map_or("_".into(), |ty| shape(resolve, ty)),
            result
                .err
                .as_ref()
                .map_or("_".into(), |ty| shape(resolve, ty))
        ),
        TypeDefKind::List(ty) => format!("list<{}>", shape(resolve, ty)),
        TypeDefKind::FixedSizeList(ty, size) => format!("list<{}, {size}>", shape(resolve, ty)),
        TypeDefKind::Future(ty) => format!(
            "future<{}>",
            ty.as_ref().map_or("_".into(), |ty| shape(resolve, ty))
        ),
        TypeDefKind::Stream(ty) => format!(
            "stream<{}>",
            ty.as_ref().map_or("_".into(), |ty| shape(resolve, ty))
        ),
        TypeDefKind::Type(ty) => shape(resolve, ty),
        TypeDefKind::Unknown => "unknown".into(),
    }
}

/// A type as WIT writes it at a use site: named types by name.
fn short(resolve: &Resolve, ty: &Type) -> String {
    let Type::Id(id) = ty else {
        return primitive(ty).to_string();
    };
    let def = &resolve.types[*id];
    if let Some(name) = &def.name {
        return name.clone();
    }
    match &def.kind {
        TypeDefKind::Option(ty) => format!("option<{}>", short(resolve, ty)),
        TypeDefKind::List(ty) => format!("list<{}>", short(resolve, ty)),
        TypeDefKind::Result(result) => format!(
            "result<{}, {}>",
            result
                .ok
                .as_ref()
                .map_or("_".into(), |ty| short(resolve, ty)),
            result
                .err
                .as_ref()
                .map_or("_".into(), |ty| short(resolve, ty))
        ),
        TypeDefKind::Tuple(tuple) => format!(
            "tuple<{}>",
            tuple
                .types
                .iter()
                .map(|ty| short(resolve, ty))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeDefKind::Handle(Handle::Own(target)) => short(resolve, &Type::Id(*target)),
        TypeDefKind::Handle(Handle::Borrow(target)) => {
            format!("borrow<{}>", short(resolve, &Type::Id(*target)))
        }
        _ => shape(resolve, ty),
    }
}

/// Every named type a function's signature reaches, with its shape.
fn named_types(resolve: &Resolve, function: &Function) -> BTreeMap<String, String> {
    fn visit(resolve: &Resolve, ty: &Type, out: &mut BTreeMap<String, String>) {
        let Type::Id(id) = ty else { return };
        let def = &resolve.types[*id];
        if let Some(name) = &def.name {
            if out.contains_key(name) {
                return;
            }
            out.insert(name.clone(), shape(resolve, ty));
        }
        let mut children: Vec<&Type> = Vec::new();
        match &def.kind {
            TypeDefKind::Record(record) => children.extend(record.fields.iter().map(|f| &f.ty)),
            TypeDefKind::Tuple(tuple) => children.extend(&tuple.types),
            TypeDefKind::Variant(variant) => {
                children.extend(variant.cases.iter().filter_map(|case| case.ty.as_ref()))
            }
            TypeDefKind::Option(ty) | TypeDefKind::List(ty) | TypeDefKind::Type(ty) => {
                children.push(ty)
            }
            TypeDefKind::FixedSizeList(ty, _) => children.push(ty),
            TypeDefKind::Result(result) => {
                children.extend(result.ok.iter().chain(result.err.iter()))
            }
            _ => {}
        }
        for child in children {
            visit(resolve, child, out);
        }
    }
    let mut out = BTreeMap::new();
    for (_, ty) in &function.params {
        visit(resolve, ty, &mut out);
    }
    if let Some(ty) = &function.result {
        visit(resolve, ty, &mut out);
    }
    out
}

fn primitive(ty: &Type) -> &'static str {
    match ty {
        Type::Bool => "bool",
        Type::U8 => "u8",
        Type::U16 => "u16",
        Type::U32 => "u32",
        Type::U64 => "u64",
        Type::S8 => "s8",
        Type::S16 => "s16",
        Type::S32 => "s32",
        Type::S64 => "s64",
        Type::F32 => "f32",
        Type::F64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::ErrorContext => "error-context",
        Type::Id(_) => "type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_runtimes_implement_the_world() {
        for (name, bytes) in super::super::BUILT_IN_RUNTIMES {
            let report = check_component(bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(report.version, "0.1.1", "{name}");
            assert!(
                report
                    .imports
                    .iter()
                    .any(|i| i.starts_with("mlhost:runtime/host@")),
                "{name}: {:?}",
                report.imports
            );
        }
    }

    #[test]
    fn versions_match_as_wasmtime_matches_them() {
        let v = |text: &str| semver::Version::parse(text).unwrap();
        assert!(compatible(&v("0.1.0"), &v("0.1.9")));
        assert!(!compatible(&v("0.1.0"), &v("0.2.0")));
        assert!(compatible(&v("1.0.0"), &v("1.4.0")));
        assert!(!compatible(&v("1.0.0"), &v("2.0.0")));
        assert!(!compatible(&v("0.0.1"), &v("0.0.2")));
        assert!(compatible(&v("0.0.1"), &v("0.0.1")));
        assert!(!compatible(&v("0.2.0-rc-1"), &v("0.2.0")));
        assert_eq!(runtime_version(), "0.1.1");
    }

    #[test]
    fn a_core_module_or_other_bytes_are_refused_in_words() {
        let module = b"\0asm\x01\0\0\0";
        assert!(
            check_component(module)
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(
            check_component(b"hello")
                .unwrap_err()
                .contains("not a WebAssembly file")
        );
    }
}

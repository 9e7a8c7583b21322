//! Interfaces by name and version: how messages label them, and which versions match (as
//! wasmtime matches them when it links a component).

use std::fmt::Write as _;
use wit_parser::{InterfaceId, Resolve};

/// `namespace:package/interface@version`, or without the version.
pub(super) fn interface_label(
    resolve: &Resolve,
    interface: InterfaceId,
    with_version: bool,
) -> String {
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

/// The version of the package `interface` belongs to.
pub(super) fn package_version(resolve: &Resolve, interface: InterfaceId) -> Option<String> {
    let package = resolve.interfaces[interface].package?;
    resolve.packages[package]
        .name
        .version
        .as_ref()
        .map(ToString::to_string)
}

/// Same namespace, package and interface name, whatever the versions.
pub(super) fn same_interface_name(
    a: &Resolve,
    a_id: InterfaceId,
    b: &Resolve,
    b_id: InterfaceId,
) -> bool {
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
pub(super) fn compatible_versions(
    a: &Resolve,
    a_id: InterfaceId,
    b: &Resolve,
    b_id: InterfaceId,
) -> bool {
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

/// Whether a component built against version `b` may be linked where `a` is provided.
pub(super) fn compatible(a: &semver::Version, b: &semver::Version) -> bool {
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

//! The comparison of a component's types with the runtime world's: the two sides, and how two
//! functions differ, in words. The checks of exports and imports build on it.

use super::render::{function_shape, function_signature, named_types};
use std::fmt::Write as _;
use wit_parser::{Function, InterfaceId, Resolve, Type, TypeDefKind, WorldId, WorldItem};

/// The two sides of the comparison: the world as this binary has it, and the component's.
pub(super) struct Check<'a> {
    pub(super) wanted: &'a Resolve,
    pub(super) found: &'a Resolve,
}

impl<'a> Check<'a> {
    /// Compares the component's types (`found`) with the world's (`wanted`).
    pub(super) fn new(wanted: &'a Resolve, found: &'a Resolve) -> Self {
        Check { wanted, found }
    }

    /// The `host` interface of the world (for messages).
    pub(super) fn wanted_host(&self, world: WorldId) -> InterfaceId {
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
    pub(super) fn used_interfaces(&self, interface: InterfaceId) -> Vec<InterfaceId> {
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
    pub(super) fn function_difference(
        &self,
        wanted: &Function,
        found: &Function,
    ) -> Option<String> {
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

//! Triton's shared memory extension, which mlhost does not support: a tensor that names a
//! shared-memory region (its `shared_memory_region` parameter, as tritonclient's
//! `set_shared_memory` sets it) is refused with a message that says so, before its missing data
//! would be reported instead.

/// What every shared-memory call and every tensor naming a region is answered.
pub(crate) const UNSUPPORTED: &str =
    "shared memory is not supported by mlhost: send the tensor data in the request";

/// The parameters by which a tensor refers to a shared-memory region.
const PARAMETERS: &[&str] = &[
    "shared_memory_region",
    "shared_memory_byte_size",
    "shared_memory_offset",
];

/// Whether parameters of these names refer to a shared-memory region.
pub(crate) fn refers_to_region<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|name| PARAMETERS.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_region_parameter_refers_to_shared_memory() {
        assert!(refers_to_region(
            ["binary_data_size", "shared_memory_region"].into_iter()
        ));
        assert!(refers_to_region(["shared_memory_byte_size"].into_iter()));
        assert!(!refers_to_region(
            ["binary_data_size", "content_type"].into_iter()
        ));
        assert!(!refers_to_region(std::iter::empty()));
    }
}

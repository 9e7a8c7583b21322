//! Sizes ModelMesh places models by: a model's estimated memory, and the runtime's capacity.
//!
//! What a model costs, as the host can tell without measuring a running instance: each of its
//! instances (one per worker) holds a baseline of linear memory, the model's files as read, and
//! what the runtime builds from them (the parsed trees or coefficients, or ONNX Runtime's
//! session for a native ONNX model), taken as the files' size again; a component of the model's
//! own adds its compiled code (about three times the `.wasm` file). The built-in runtimes'
//! compiled code is shared by every model and counted in the reserve instead.

use super::model_path::MeshModel;
use std::path::Path;

const MIB: u64 = 1024 * 1024;

/// The linear memory an instance holds before its model's data: its stack, heap and the
/// runtime's own data.
const INSTANCE_BASELINE_BYTES: u64 = 2 * MIB;

/// What the server keeps for itself out of the memory it may use: the binary, the built-in
/// runtimes' compiled code, requests in flight (ModelMesh's adapters keep 128 MiB as well).
pub(super) const RESERVE_BYTES: u64 = 128 * MIB;

/// The capacity when the memory the server may use is unknown.
const UNKNOWN_MEMORY_CAPACITY_BYTES: u64 = 1024 * MIB;

/// The most files a folder's size is summed over (a model folder is small).
const MAX_FILES: usize = 10_000;

/// The memory a loaded model is estimated to hold, in bytes.
pub(super) fn estimate(model: &MeshModel) -> u64 {
    estimate_from(model.disk_bytes, model.workers, model.component_bytes)
}

/// The estimate for a model of `disk_bytes` in files, with `workers` instances and a component
/// of its own of `component_bytes`.
pub(super) fn estimate_from(disk_bytes: u64, workers: usize, component_bytes: u64) -> u64 {
    let per_instance = INSTANCE_BASELINE_BYTES.saturating_add(disk_bytes.saturating_mul(2));
    per_instance
        .saturating_mul(workers.max(1) as u64)
        .saturating_add(component_bytes.saturating_mul(3))
}

/// The bytes of the files below `folder` (symbolic links not followed; the first
/// [`MAX_FILES`] files).
pub(super) fn folder_bytes(folder: &Path) -> u64 {
    let mut total = 0u64;
    let mut files = 0usize;
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                pending.push(entry.path());
            } else if file_type.is_file() {
                total = total.saturating_add(entry.metadata().map_or(0, |m| m.len()));
                files += 1;
                if files >= MAX_FILES {
                    return total;
                }
            }
        }
    }
    total
}

/// The capacity ModelMesh may fill: `configured_mb` when set, else the memory the server may
/// use less [`RESERVE_BYTES`] (1 GiB when that memory is unknown).
pub(super) fn capacity(configured_mb: Option<u64>) -> u64 {
    if let Some(mb) = configured_mb {
        return mb.saturating_mul(MIB);
    }
    match memory_available() {
        Some(memory) => memory.saturating_sub(RESERVE_BYTES).max(MIB),
        None => UNKNOWN_MEMORY_CAPACITY_BYTES,
    }
}

/// The memory the server may use: its cgroup's limit (a container's memory limit), else the
/// machine's memory. Linux only; `None` elsewhere.
#[cfg(target_os = "linux")]
fn memory_available() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    // cgroup v2, then v1 (whose "no limit" is a number near 2^63).
    let limit = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|limit| *limit < 1 << 60);
    limit.or_else(|| {
        let meminfo = read("/proc/meminfo")?;
        let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    })
}

#[cfg(not(target_os = "linux"))]
fn memory_available() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_count_every_instance_and_a_components_code() {
        assert_eq!(estimate_from(0, 1, 0), 2 * MIB);
        assert_eq!(estimate_from(MIB, 2, 0), 2 * (2 * MIB + 2 * MIB));
        assert_eq!(estimate_from(0, 1, MIB), 2 * MIB + 3 * MIB);
        assert_eq!(estimate_from(u64::MAX, 4, 0), u64::MAX);
    }

    #[test]
    fn folder_bytes_sums_the_files_below() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 5]).unwrap();
        assert_eq!(folder_bytes(dir.path()), 15);
        assert_eq!(folder_bytes(&dir.path().join("missing")), 0);
    }

    #[test]
    fn capacity_is_the_setting_else_the_memory_less_the_reserve() {
        assert_eq!(capacity(Some(512)), 512 * MIB);
        let derived = capacity(None);
        assert!(derived >= MIB, "{derived}");
        if let Some(memory) = memory_available() {
            assert_eq!(derived, memory.saturating_sub(RESERVE_BYTES).max(MIB));
        }
    }
}

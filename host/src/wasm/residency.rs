//! Only the compiled code that runs kept resident.
//!
//! A component served from the compilation cache is the cache file mapped into memory (wasmtime
//! deserializes from the file). Which of its pages become resident depends less on what runs
//! than on the page cache: the checksum's read (and, at a first start, the compiler's write)
//! leaves the file's pages cached in large folios, up to 2 MiB each, and the kernel maps a whole
//! folio around the page a fault needs (Linux 6's fault-around, and PMD mappings). The `onnx`
//! runtime, of which a natively served model runs little, kept 21 MiB of its code resident so.
//!
//! So the file's cached pages are dropped before it is mapped, and again once wasmtime has read
//! what it reads at load; the mapping is marked as read at random (`MADV_RANDOM`: no read-ahead
//! on faults in its data sections). A page is then read when it is first needed, into a
//! page-sized folio, and a fault maps the cached pages of its 64 KiB around it at most
//! (docs/benchmarks.md, "Memory at rest"). Linux only; elsewhere nothing changes.

use std::path::Path;
use wasmtime::component::Component;

/// Drops the pages of the file at `path` that no process maps from the page cache (its clean
/// pages: the cache's writes are synced first). Advice only: a failure is logged.
pub(super) fn forget_cached_pages(path: &Path) {
    if let Err(error) = imp::forget_cached_pages(path) {
        tracing::debug!(path = %path.display(), "cannot drop a compiled component's cached pages: {error}");
    }
}

/// Makes `component`, just mapped from the cache file at `path`, keep resident only the pages
/// that run (see the module's documentation). Advice only: a failure is logged and changes
/// nothing else.
pub(super) fn map_only_what_runs(component: &Component, path: &Path) {
    let range = component.image_range();
    if let Err(error) = imp::advise_random(range.start as usize, range.end as usize) {
        tracing::debug!(path = %path.display(), "cannot advise the kernel on a mapped component: {error}");
    }
    forget_cached_pages(path);
}

#[cfg(target_os = "linux")]
mod imp {
    use std::os::fd::AsRawFd;
    use std::path::Path;

    /// `MADV_RANDOM` on the pages of `start..end` (a mapping of this process).
    pub(super) fn advise_random(start: usize, end: usize) -> std::io::Result<()> {
        let aligned = start - start % page_size();
        if end <= aligned {
            return Ok(());
        }
        // SAFETY: MADV_RANDOM only changes how the kernel reads ahead on faults in these pages
        // (a component's own mapping, alive while the component is); their contents and
        // protections are unchanged.
        let advised = unsafe {
            libc::madvise(
                aligned as *mut libc::c_void,
                end - aligned,
                libc::MADV_RANDOM,
            )
        };
        if advised == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    pub(super) fn forget_cached_pages(path: &Path) -> std::io::Result<()> {
        let file = std::fs::File::open(path)?;
        // SAFETY: advice on an open file descriptor: the kernel drops the file's clean pages
        // that no process maps from the page cache; the file's contents are unchanged.
        match unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) } {
            0 => Ok(()),
            error => Err(std::io::Error::from_raw_os_error(error)),
        }
    }

    fn page_size() -> usize {
        // SAFETY: sysconf has no preconditions.
        usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .ok()
            .filter(|&size| size > 0)
            .unwrap_or(4096)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::path::Path;

    pub(super) fn advise_random(_start: usize, _end: usize) -> std::io::Result<()> {
        Ok(())
    }

    pub(super) fn forget_cached_pages(_path: &Path) -> std::io::Result<()> {
        Ok(())
    }
}

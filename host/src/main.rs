//! The `mlhost` binary: the command line of the library ([`mlhost::run_cli`]).

/// mimalloc on Linux (docs/benchmarks.md, "The allocator"): about a quarter more requests/s
/// than glibc's malloc at 64 clients, mostly from frees of memory another thread allocated.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mlhost::run_cli()
}

/// [`commit_arenas_lazily`], run by the loader before `main` and before Rust's start-up, whose
/// first allocation (the main thread's name) already reserves mimalloc's first arena.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static COMMIT_ARENAS_LAZILY: extern "C" fn() = commit_arenas_lazily;

/// Tells mimalloc to commit its arenas' memory as it is used rather than all at once (mimalloc's
/// default where the system overcommits, as Linux does): eager commit keeps about 45 MiB more
/// resident at rest with the examples loaded. `MIMALLOC_ARENA_EAGER_COMMIT` in the environment
/// still decides when it is set.
#[cfg(target_os = "linux")]
extern "C" fn commit_arenas_lazily() {
    /// `mi_option_arena_eager_commit` in mimalloc's `mi_option_t` (v2 and v3's `mimalloc.h`):
    /// the bindings do not name it.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        // SAFETY: runs before any thread exists (mimalloc's options are not synchronized) and
        // before the first arena; the option takes 0, 1 or 2.
        unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
    }
}

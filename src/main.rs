//! The `wirewatch` binary: everything lives in the library; see `wirewatch::cli`.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    wirewatch::cli::main()
}

/// Caps glibc's malloc at two arenas when it is the allocator (a build without the
/// default `mimalloc` feature). By default it gives threads up to eight arenas per
/// core, and each keeps the memory its thread freed: on a 100,000-file backlog that
/// took peak RSS from about 90 MiB to about 146 MiB at no gain in speed
/// (docs/performance.md). An explicit `MALLOC_ARENA_MAX` still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only adjusts allocator parameters; it is called before any
        // other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// mimalloc's memory defaults for the daemon, set before its first allocation: arenas
/// committed as they are used (`arena_eager_commit` 0, against 2: eager on Linux) and
/// freed pages handed back after 100 ms (`purge_delay`, against 1,000 ms). On a
/// 100,000-file backlog they take peak RSS from about 150 MiB to about 95 MiB at the
/// same CPU (docs/performance.md, "Memory"). `main` is too late for the first: the runtime allocates,
/// and so reserves mimalloc's first arena, before it. A constructor runs before that,
/// and `mi_option_set_default` leaves an option the environment sets
/// (`MIMALLOC_ARENA_EAGER_COMMIT`, `MIMALLOC_PURGE_DELAY`) to the environment.
#[cfg(all(feature = "mimalloc", any(target_os = "linux", target_os = "android")))]
mod mimalloc_defaults {
    use libmimalloc_sys::{mi_option_set_default, mi_option_t};

    /// `mi_option_arena_eager_commit` in mimalloc.h (v2 and v3); libmimalloc-sys
    /// does not name it.
    const ARENA_EAGER_COMMIT: mi_option_t = 4;
    /// `mi_option_purge_delay` in mimalloc.h (v2 and v3), in milliseconds.
    const PURGE_DELAY: mi_option_t = 15;

    extern "C" fn set() {
        // SAFETY: both indices are options of the linked mimalloc, and setting a
        // default only stores a number; this runs before `main`, on one thread.
        unsafe {
            mi_option_set_default(ARENA_EAGER_COMMIT, 0);
            mi_option_set_default(PURGE_DELAY, 100);
        }
    }

    /// Run by the loader with the other constructors, before `main`.
    #[used]
    #[link_section = ".init_array"]
    static SET: extern "C" fn() = set;
}

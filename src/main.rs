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

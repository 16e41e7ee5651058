//! The process's allocator: mimalloc 2, and the two settings trawl changes.
//!
//! mimalloc rather than glibc's malloc: the analyzer allocates per message
//! on several threads, where glibc contends on its arena locks
//! (docs/performance.md).
//!
//! Each tick's Arrow arrays are built by a shard worker and freed by the
//! writer some tens of milliseconds later. With mimalloc's defaults the
//! pages they held were given back to the system after 10 ms and faulted
//! in again, zeroed, as 2 MiB transparent huge pages, tick after tick: a
//! UDP flood spent 1.75 of its 9.75 CPU-seconds in the kernel doing that.
//! trawl waits 25 ms before giving memory back, and mimalloc does not ask
//! for huge pages (the `no_thp` feature, in Cargo.toml: no
//! `madvise(MADV_HUGEPAGE)`; where the kernel's THP mode is `always`,
//! `MIMALLOC_ALLOW_THP=0` turns them off too): 6-27% less CPU on the
//! benchmark captures for the same peak memory; at 50 ms and more the
//! UDP flood's peak grew past its 256 MB budget (docs/performance.md,
//! "The allocator's settings"). The environment still decides where it
//! says something (`MIMALLOC_PURGE_DELAY`).

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its place in mimalloc 2's `mi_option_e`
/// (mimalloc.h), which libmimalloc-sys names no constant for. A test holds
/// it to the option `MIMALLOC_PURGE_DELAY` sets.
#[cfg(not(feature = "system-alloc"))]
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds before freed memory is given back to the system.
#[cfg(not(feature = "system-alloc"))]
const PURGE_DELAY_MS: std::ffi::c_long = 25;

/// Applies trawl's purge delay unless the environment chose one. Called
/// first thing in `main`.
pub fn tune() {
    #[cfg(not(feature = "system-alloc"))]
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        #[allow(unsafe_code)]
        // SAFETY: `mi_option_set` stores a number in mimalloc's option
        // table (any value of the purge delay is valid: -1 never, 0 at
        // once); it reads or writes nothing of ours.
        unsafe {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS)
        };
    }
}

#[cfg(all(test, not(feature = "system-alloc")))]
mod tests {
    use std::process::Command;

    const CHILD: &str = "TRAWL_ALLOCATOR_TEST_CHILD";

    fn purge_delay() -> std::ffi::c_long {
        #[allow(unsafe_code)]
        // SAFETY: reads a number from mimalloc's option table.
        unsafe {
            libmimalloc_sys::mi_option_get(super::PURGE_DELAY)
        }
    }

    /// The option trawl sets is the one `MIMALLOC_PURGE_DELAY` sets
    /// (mimalloc reads the environment at start, so in a child process),
    /// and trawl leaves the user's value alone.
    #[test]
    fn the_option_set_is_the_purge_delay_of_the_environment() {
        if std::env::var_os(CHILD).is_some() {
            assert_eq!(purge_delay(), 77, "option {} is not MIMALLOC_PURGE_DELAY", super::PURGE_DELAY);
            super::tune();
            assert_eq!(purge_delay(), 77, "tune() overrode MIMALLOC_PURGE_DELAY");
            return;
        }
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("the test binary's path: {e}"));
        let name = "allocator::tests::the_option_set_is_the_purge_delay_of_the_environment";
        let out = Command::new(exe)
            .args(["--exact", name, "--test-threads=1"])
            .env("MIMALLOC_PURGE_DELAY", "77")
            .env(CHILD, "1")
            .output()
            .unwrap_or_else(|e| panic!("running the test binary again: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn tune_waits_25_milliseconds_before_giving_memory_back() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the environment decides (the test above)
        }
        assert_eq!(purge_delay(), 10, "mimalloc's own default");
        super::tune();
        assert_eq!(purge_delay(), 25);
    }
}

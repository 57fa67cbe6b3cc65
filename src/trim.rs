//! Gives memory freed after a burst back to the system. glibc's allocator keeps freed pages in each
//! thread's arena: after ten thousand new conversations at once, the session threads held 50 MB
//! each with 6 MB in use (the load generator's sessions scenario). `malloc_trim` returns the free
//! pages; every ten seconds is often enough for an ops bot and costs well under a millisecond when
//! there is nothing to return.

use std::time::Duration;

/// How often freed memory is returned.
const EVERY: Duration = Duration::from_secs(10);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and may be called at any time from any thread.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// Trims every `EVERY` on the current actix system until it stops.
pub fn start() {
    actix_web::rt::spawn(async {
        let mut tick = actix_web::rt::time::interval(EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            trim();
        }
    });
}

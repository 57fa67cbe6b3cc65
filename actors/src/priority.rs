//! The threads that run flows yield the CPU to the threads that acknowledge. Everything
//! acknowledged is kept, so the work it starts can wait a moment; a notification that waits for a
//! busy CPU may be sent again by Meta or make a monitor give up. Under an alert storm on two
//! cores, the flows' threads at the same priority took most of the CPU and intake fell to a sixth
//! of what it was alone (BENCHMARKS.md, "Issue 13"). Only the scheduler's share under contention
//! changes: an idle machine runs the flows at full speed.

/// How much lower (the nice increment) the flows' threads run.
const FLOWS_NICE: i32 = 10;

/// Lowers the calling thread's priority for flow runs; logs and goes on if the system refuses.
pub fn lower_for_flows() {
    if let Err(e) = nice_this_thread(FLOWS_NICE) {
        tracing::warn!(error = %e, "could not lower the priority of a flow thread");
    }
}

#[cfg(target_os = "linux")]
fn nice_this_thread(increment: i32) -> std::io::Result<()> {
    extern "C" {
        fn setpriority(
            which: std::ffi::c_int,
            who: std::ffi::c_uint,
            prio: std::ffi::c_int,
        ) -> std::ffi::c_int;
        fn getpriority(which: std::ffi::c_int, who: std::ffi::c_uint) -> std::ffi::c_int;
    }
    const PRIO_PROCESS: std::ffi::c_int = 0;
    // SAFETY: plain integer arguments, no pointers; on Linux the nice value belongs to the thread
    // and `who = 0` names the calling one.
    let result = unsafe { setpriority(PRIO_PROCESS, 0, getpriority(PRIO_PROCESS, 0) + increment) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn nice_this_thread(_increment: i32) -> std::io::Result<()> {
    Ok(())
}

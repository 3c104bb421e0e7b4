//! SIGINT, SIGTERM (what SLURM sends at a time limit) and SIGHUP end the process the
//! conventional way, 128 + the signal (130, 143, 129), after removing this process's temporary
//! output files and locks (`io_util::registry`): an interrupted run leaves nothing behind, and
//! a rerun finds none of its debris. (SIGKILL cannot be caught: the next run at the same output
//! removes what a killed run left, `io_util::AtomicFile`.)
//!
//! The signals are blocked in every thread and taken by one thread of their own with
//! `sigwait`, so the cleanup runs as ordinary code, not in a signal handler's narrow world.

/// Blocks the signals in the calling thread (and so in every thread it starts afterwards) and
/// starts the thread that waits for them. Call first thing in `main`, before any thread.
pub fn install() {
    // SAFETY: sigset_t is plain data, filled by sigemptyset/sigaddset before use; the mask is
    // set for the calling thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        let waiting = set;
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut sig: libc::c_int = 0;
                if libc::sigwait(&waiting, &mut sig) == 0 {
                    let removed = crate::io_util::registry::delete_all();
                    let name = match sig {
                        libc::SIGINT => "SIGINT",
                        libc::SIGTERM => "SIGTERM",
                        _ => "SIGHUP",
                    };
                    eprintln!("dnabert: stopped by {name}; {removed} temporary file(s) removed");
                    std::process::exit(128 + sig);
                }
            });
        if spawned.is_err() {
            // No waiting thread: let the signals act as before rather than be ignored.
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

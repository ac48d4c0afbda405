//! The few system calls of `wirewatch tail` that std does not wrap: the interrupt
//! flag, the terminal's width, and whether standard output's reader has gone.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first SIGINT or SIGTERM; the loops stop at the next line or poll.
pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn handler(_: libc::c_int) {
    // An atomic store is async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

/// The first SIGINT or SIGTERM sets [`STOP`]; a second one kills as usual
/// (`SA_RESETHAND`), so a stuck write can still be interrupted.
pub fn stop_on_interrupt() {
    // SAFETY: `sigaction` gets a zeroed, then filled, struct we own and a handler
    // that only performs an atomic store.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
        act.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
        libc::sigemptyset(&mut act.sa_mask);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

/// Columns of the terminal on standard output, if it is one.
pub fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills a `winsize` we own; a failing call is reported
    // by its return value and leaves it zeroed.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// True when standard output is a pipe or socket whose reader has gone.
pub fn stdout_closed() -> bool {
    let mut fds = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid `pollfd` we own, zero time-out.
    let rc = unsafe { libc::poll(&mut fds, 1, 0) };
    rc > 0 && fds.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

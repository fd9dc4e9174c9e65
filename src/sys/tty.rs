//! Terminal window sizes (tty_ioctl(4): TIOCGWINSZ, TIOCSWINSZ).

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::pty::Winsize;

/// The window size of a terminal, if `fd` is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<Winsize> {
    let mut size = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` into `size`, which
    // lives across the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size as *mut Winsize) };
    (ret == 0).then_some(size)
}

/// Sets a terminal's window size; errors are ignored (not a terminal).
pub fn set_window_size(fd: BorrowedFd<'_>, size: &Winsize) {
    // SAFETY: TIOCSWINSZ reads one `struct winsize` during the call.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size as *const Winsize) };
}

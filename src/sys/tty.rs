//! Terminal window sizes (tty_ioctl(4): TIOCGWINSZ, TIOCSWINSZ) and pty masters.

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

/// The number of the pty whose master `fd` is (tty_ioctl(4), TIOCGPTN);
/// None for anything else, a pty slave included.
pub fn pty_number(fd: BorrowedFd<'_>) -> Option<u32> {
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int into `number`, which lives
    // across the call; on anything but a pty master it fails with ENOTTY.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGPTN,
            &mut number as *mut libc::c_uint,
        )
    };
    (ret == 0).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn only_a_pty_master_has_a_pty_number() {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        assert!(pty_number(pty.master.as_fd()).is_some());
        assert!(pty_number(pty.slave.as_fd()).is_none());
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(pty_number(file.as_fd()).is_none());
    }
}

//! sysvinit's request to change runlevel, as `telinit` writes it to
//! /run/initctl: `struct init_request` of sysvinit's initreq.h (initctl(5)).
//!
//! The guest's init reads it with its own idea of an `int`: 4 bytes in the
//! guest CPU's byte order, which under emulation need not be the host's.

/// `INIT_MAGIC`.
const MAGIC: i32 = 0x0309_1969;
/// `INIT_CMD_RUNLVL`.
const CMD_RUNLVL: i32 = 1;
/// Four ints, then a 368-byte union (`data`, or the unused BSD fields).
pub(crate) const REQUEST_LEN: usize = 384;
/// Seconds init waits between SIGTERM and SIGKILL of the processes the new
/// runlevel does not run: telinit's default (`WAIT_BETWEEN_SIGNALS`).
const SLEEP_TIME: i32 = 3;

/// The request for runlevel `level` (an ASCII digit, as telinit sends it),
/// encoded for a guest of the given byte order.
pub(crate) fn runlevel_request(level: u8, big_endian: bool) -> [u8; REQUEST_LEN] {
    let mut request = [0u8; REQUEST_LEN];
    let fields = [MAGIC, CMD_RUNLVL, i32::from(level), SLEEP_TIME];
    for (slot, value) in request.chunks_exact_mut(4).zip(fields) {
        let bytes = if big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        };
        slot.copy_from_slice(&bytes);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_initreq_h_in_the_guest_byte_order() {
        let little = runlevel_request(b'0', false);
        assert_eq!(little.len(), 384);
        assert_eq!(&little[..4], &[0x69, 0x19, 0x09, 0x03]);
        assert_eq!(&little[4..8], &[1, 0, 0, 0]);
        assert_eq!(&little[8..12], &[b'0', 0, 0, 0]);
        assert_eq!(&little[12..16], &[3, 0, 0, 0]);
        assert!(little[16..].iter().all(|&b| b == 0));

        let big = runlevel_request(b'0', true);
        assert_eq!(&big[..4], &[0x03, 0x09, 0x19, 0x69]);
        assert_eq!(&big[4..8], &[0, 0, 0, 1]);
        assert_eq!(&big[8..12], &[0, 0, 0, b'0']);
        assert!(big[16..].iter().all(|&b| b == 0));
    }
}

//! Which terminals the image's gettys wait on, from /etc/inittab
//! (inittab(5): `id:runlevels:action:process`): rootrun's console is given
//! those names, so that a login prompt appears on it.
//!
//! The file is the image's: only names that are one plain path component
//! of the usual terminal families come out of it.

/// At most this many bytes of /etc/inittab are read.
pub const INITTAB_MAX: usize = 64 * 1024;

/// The terminal names that getty-like lines of `inittab` run on, in file
/// order, without repeats: `tty1`, `ttyS0`, `ttyAMA0`, `hvc0`, ...
pub fn getty_ttys(inittab: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(inittab);
    let mut found: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(4, ':');
        let (Some(id), Some(_levels), Some(action), Some(process)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !matches!(action, "respawn" | "once" | "askfirst") {
            continue;
        }
        // BusyBox init and OpenWrt's procd read the id field as the
        // terminal the process runs on (`ttyS0::askfirst:/usr/libexec/
        // login.sh`; BusyBox's example inittab, procd's inittab.c
        // fork_worker), whatever the process is; sysvinit's ids (`1`, `T0`)
        // are no terminal names.
        let id = id.trim().strip_prefix("/dev/").unwrap_or(id.trim());
        if is_terminal_name(id) && !found.iter().any(|f| f == id) {
            found.push(id.to_owned());
            continue;
        }
        let mut words = process.split_whitespace();
        let base = |word: &str| word.rsplit('/').next().unwrap_or_default().to_owned();
        let mut program = words.next().map(base).unwrap_or_default();
        // BusyBox's inittab says `/bin/busybox getty ...` as often as
        // `/sbin/getty ...`.
        if program == "busybox" {
            program = words.next().map(base).unwrap_or_default();
        }
        let is_getty = program.ends_with("getty");
        if !is_getty {
            continue;
        }
        for word in words {
            let name = word.strip_prefix("/dev/").unwrap_or(word);
            if is_terminal_name(name) && !found.iter().any(|f| f == name) {
                found.push(name.to_owned());
            }
        }
    }
    found
}

/// Whether `inittab` has procd's `askconsole` action (OpenWrt's
/// `::askconsole:/usr/libexec/login.sh`), whose login runs on the terminal
/// the kernel command line names (`askconsole_tty`).
pub fn has_askconsole(inittab: &[u8]) -> bool {
    String::from_utf8_lossy(inittab).lines().any(|line| {
        let line = line.trim();
        !line.starts_with('#') && line.split(':').nth(2) == Some("askconsole")
    })
}

/// The terminal procd's `askconsole` runs on, given the kernel command line
/// the container sees (the host's): the one `console=NAME[,options]`
/// (procd's inittab.c, askconsole); with none or several, procd takes
/// /dev/console itself, which is rootrun's console already (None).
pub fn askconsole_tty(cmdline: &str) -> Option<String> {
    let mut consoles = cmdline
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("console="));
    let first = consoles.next()?;
    if consoles.next().is_some() {
        return None;
    }
    let name = first.split(',').next().unwrap_or_default();
    is_terminal_name(name).then(|| name.to_owned())
}

/// `tty1`, `ttyS0`, `ttyAMA0`, `ttymxc0`, `ttyO0`, `ttyPS0`, `hvc0`: a
/// family prefix, letters, then a number; nothing that could be a path.
fn is_terminal_name(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("tty")
        .or_else(|| name.strip_prefix("hvc"))
    else {
        return false;
    };
    let digits = rest.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    name.len() <= 16 && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// The virtual consoles tty1..tty63 (console(4)), as opposed to serial
/// lines and hypervisor consoles.
pub fn is_virtual_console(name: &str) -> bool {
    name.strip_prefix("tty")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// The names rootrun's console is bound to in the container's /dev: the
/// serial or hypervisor consoles the gettys wait on when there are any (a
/// device's inittab names the one it has), else tty1, where Debian's
/// sysvinit and runit start their first getty. One terminal per getty: two
/// gettys on one console would fight over its input.
pub fn console_ttys(gettys: &[String]) -> Vec<String> {
    let serial: Vec<String> = gettys
        .iter()
        .filter(|name| !is_virtual_console(name))
        .cloned()
        .collect();
    if serial.is_empty() {
        vec!["tty1".to_owned()]
    } else {
        serial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "\
id:2:initdefault:
si::sysinit:/etc/init.d/rcS
l0:0:wait:/etc/init.d/rc 0
z6:6:respawn:/sbin/sulogin --force
pf::powerwait:/etc/init.d/powerfail start
1:2345:respawn:/sbin/getty --noclear 38400 tty1
2:23:respawn:/sbin/getty 38400 tty2
#T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100
";

    #[test]
    fn debian_inittab_gives_its_virtual_consoles_and_the_console_is_tty1() {
        let gettys = getty_ttys(DEBIAN.as_bytes());
        assert_eq!(gettys, ["tty1", "tty2"], "the commented ttyS0 line is not");
        assert_eq!(console_ttys(&gettys), ["tty1"]);
    }

    #[test]
    fn serial_gettys_of_devices_are_found() {
        let inittab = "\
ttyAMA0::respawn:/sbin/getty -L ttyAMA0 115200 vt100
T1:23:respawn:/sbin/agetty -L 115200 /dev/ttymxc0 vt102
h0:12345:respawn:/sbin/getty 38400 hvc0
s0::askfirst:/bin/busybox getty -L ttyPS0 115200
x::respawn:/sbin/getty 38400 tty1
bad::respawn:/sbin/getty ../../etc/passwd tty/../x ttyS0/x
";
        let gettys = getty_ttys(inittab.as_bytes());
        assert_eq!(gettys, ["ttyAMA0", "ttymxc0", "hvc0", "ttyPS0", "tty1"]);
        assert_eq!(
            console_ttys(&gettys),
            ["ttyAMA0", "ttymxc0", "hvc0", "ttyPS0"]
        );
    }

    #[test]
    fn the_id_field_names_the_terminal_for_busybox_and_procd() {
        // OpenWrt before askconsole, and a BusyBox root shell on a serial
        // line: no getty program, the id is the terminal.
        let inittab = "\
::sysinit:/etc/init.d/rcS S boot
::shutdown:/etc/init.d/rcS K shutdown
ttyS0::askfirst:/usr/libexec/login.sh
/dev/ttyAMA0::respawn:/bin/sh
1:2345:respawn:/sbin/getty 38400 tty1
../x::respawn:/bin/sh
";
        let gettys = getty_ttys(inittab.as_bytes());
        assert_eq!(gettys, ["ttyS0", "ttyAMA0", "tty1"]);
        assert_eq!(console_ttys(&gettys), ["ttyS0", "ttyAMA0"]);
    }

    #[test]
    fn procds_askconsole_takes_the_one_console_of_the_kernel_command_line() {
        assert!(has_askconsole(b"::askconsole:/usr/libexec/login.sh\n"));
        assert!(!has_askconsole(b"#::askconsole:/x\n::askfirst:/x\n"));
        let cmdline = "quiet console=ttyS0,115200n8 root=/dev/vda";
        assert_eq!(askconsole_tty(cmdline).as_deref(), Some("ttyS0"));
        // Several consoles, or none: procd uses /dev/console.
        assert_eq!(askconsole_tty("console=tty0 console=ttyS0"), None);
        assert_eq!(askconsole_tty("quiet"), None);
        assert_eq!(askconsole_tty("console=../../etc/passwd"), None);
    }

    #[test]
    fn no_gettys_still_gives_tty1() {
        assert!(getty_ttys(b"\xff\xfe:::\n::respawn:\n").is_empty());
        assert_eq!(console_ttys(&[]), ["tty1"]);
    }
}

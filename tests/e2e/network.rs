//! The container's network: loopback is up in every container (#10), and
//! nothing else is there by default; `--net host`, `bridge=BR` and `nat`.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::{rootrun, sh_command, text, Frame};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn loopback_is_up_and_carries_traffic_inside_the_container() {
    let Some((frame, image)) = Frame::with_busybox("loopback", "amd64") else {
        return;
    };
    // A TCP round trip over 127.0.0.1 inside the container's own network
    // namespace (busybox nc), and no interface besides lo.
    let script = "ip addr show lo; \
                  (echo pong | nc -l -p 4321 127.0.0.1 &) ; sleep 0.5; \
                  echo ping | nc 127.0.0.1 4321; \
                  echo links=$(ls /sys/class/net)";
    let out = frame.sh(&image, script, LIMIT);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("inet 127.0.0.1/8"), "{stdout}");
    assert!(stdout.contains("UP"), "lo is down: {stdout}");
    assert!(
        stdout.lines().any(|l| l == "pong"),
        "no round trip: {stdout}"
    );
    assert!(stdout.contains("links=lo"), "{stdout}");
    frame.check();
}

// ---------------------------------------------------------------------------
// --net host, bridge=BR, nat (README, Networking). These tests hold the
// network lock (one at a time across suites: rootrun0 is one per host) and
// send packets only between addresses they put on bridges they or rootrun
// made: the bridge's own address and the guest's.

/// rootrun's NAT network (README, Networking), spelled out here: the
/// harness checks rootrun, it does not take names from its code.
const NAT_BRIDGE: &str = "rootrun0";
const NAT_STATE: &str = "/run/rootrun/.net";
const NAT_DNSMASQ_ARG: &str = "--conf-file=/run/rootrun/.net/dnsmasq.conf";
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// The guest's DHCP client (BusyBox udhcpc, which needs a script to apply
/// the lease): eth0 gets the address, /router the server's, and the lease
/// is printed; then one ping to the bridge's address.
const LEASE_AND_PING: &str = "printf '%s\\n' '#!/bin/sh' \
     '[ \"$1\" = bound ] || exit 0' \
     'ip addr add \"$ip/$mask\" dev \"$interface\" && echo \"$router\" > /router' > /lease.sh; \
     chmod +x /lease.sh; \
     busybox udhcpc -n -q -i eth0 -s /lease.sh 2>&1 || exit 3; \
     echo leased; \
     busybox ping -c 1 -W 5 \"$(cat /router)\" >/dev/null && echo pinged-$(cat /router)";

/// A network interface the test made (a bridge), deleted on drop, also
/// when the test fails.
struct TestLink(String);

impl TestLink {
    /// A bridge `rrt<word><PID>`, up, with `address` (CIDR) if given.
    fn bridge(word: &str, address: Option<&str>) -> TestLink {
        let name = format!("rrt{word}{}", std::process::id());
        assert!(name.len() <= 15, "{name}: too long for an interface name");
        let _ = ip(&["link", "delete", "dev", &name]);
        assert!(
            ip(&["link", "add", "name", &name, "type", "bridge"]),
            "ip link add {name}"
        );
        let link = TestLink(name);
        if let Some(address) = address {
            assert!(ip(&["addr", "add", address, "dev", &link.0]));
        }
        assert!(ip(&["link", "set", "dev", &link.0, "up"]));
        link
    }
}

impl Drop for TestLink {
    fn drop(&mut self) {
        let _ = ip(&["link", "delete", "dev", &self.0]);
    }
}

/// `rootrun -v OPTIONS IMAGE -- /bin/sh -c SCRIPT` (its notes on stderr).
fn verbose_sh(image: &Path, options: &[&str], script: &str) -> Command {
    let mut cmd = rootrun();
    cmd.arg("-v")
        .args(options)
        .arg(image)
        .args(["--", "/bin/sh", "-c", script]);
    cmd
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The ports of bridge `bridge`.
fn bridge_ports(bridge: &str) -> Vec<String> {
    fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// PIDs of the dnsmasq processes rootrun's NAT network runs.
fn nat_dnsmasqs() -> Vec<u32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|b| *b == 0)
                    .any(|arg| arg == NAT_DNSMASQ_ARG.as_bytes())
            })
        })
        .collect()
}

fn nat_table_exists() -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", "rootrun"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What of the NAT network exists now.
fn nat_parts() -> Vec<String> {
    let mut parts = Vec::new();
    if Path::new("/sys/class/net").join(NAT_BRIDGE).exists() {
        parts.push(format!("bridge {NAT_BRIDGE}"));
    }
    if nat_table_exists() {
        parts.push("nftables table ip rootrun".into());
    }
    for pid in nat_dnsmasqs() {
        parts.push(format!("dnsmasq {pid}"));
    }
    if Path::new(NAT_STATE).exists() {
        parts.push(NAT_STATE.to_string());
    }
    parts
}

fn ip_forward() -> String {
    fs::read_to_string(IP_FORWARD).unwrap_or_default()
}

/// Before a NAT test: nothing of the NAT network exists (another rootrun
/// using it would make the test's assertions about its lifetime wrong).
fn nat_absent_before(test: &str) -> String {
    let parts = nat_parts();
    assert!(
        parts.is_empty(),
        "{test}: the NAT network is in use before the test (a rootrun --net nat running?): {parts:?}"
    );
    ip_forward()
}

/// After: all of it is gone and ip_forward is as it was.
fn assert_nat_gone(forward_before: &str) {
    let parts = nat_parts();
    assert!(parts.is_empty(), "left behind: {parts:?}");
    assert_eq!(ip_forward(), forward_before, "{IP_FORWARD} not restored");
}

fn users() -> Vec<String> {
    fs::read_dir(Path::new(NAT_STATE).join("users"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn host_network_shows_the_hosts_interfaces() {
    let Some((frame, image)) = Frame::setup("net host").network().busybox("amd64") else {
        return;
    };
    let link = TestLink::bridge("h", None);
    let out = frame.sh(
        &image,
        "echo links=$(ls /sys/class/net | tr '\\n' ' ')",
        LIMIT,
    );
    let host_view = frame.run(
        &mut sh_command(
            &image,
            &["--net", "host"],
            "echo links=$(ls /sys/class/net | tr '\\n' ' ')",
        ),
        b"",
        LIMIT,
    );
    let stdout = text(&host_view.stdout);
    assert_eq!(
        host_view.status.code(),
        Some(0),
        "{stdout}{}",
        text(&host_view.stderr)
    );
    let links: Vec<&str> = stdout
        .trim()
        .strip_prefix("links=")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert!(links.contains(&link.0.as_str()), "{stdout}");
    assert!(links.contains(&"lo"), "{stdout}");
    // The default stays loopback only.
    assert_eq!(
        text(&out.stdout).trim(),
        "links=lo",
        "{}",
        text(&out.stderr)
    );
    drop(link);
    frame.check();
}

#[test]
fn bridge_network_puts_the_veth_into_the_bridge_and_reaches_its_address() {
    let Some((frame, image)) = Frame::setup("net bridge").network().busybox("amd64") else {
        return;
    };
    let link = TestLink::bridge("b", Some("10.213.99.1/24"));
    let script = "ip addr add 10.213.99.2/24 dev eth0 && \
                  busybox ping -c 1 -W 5 10.213.99.1 >/dev/null && echo pinged; \
                  read line; echo done";
    let net = format!("bridge={}", link.0);
    let mut run = frame.live(
        &mut sh_command(&image, &["--net", &net], script),
        Stdio::piped(),
    );
    run.expect("pinged", LIMIT);
    // The host end of the container's veth, named after the container,
    // is a port of the bridge.
    let veth = format!("rootrun-{}", run.id());
    assert_eq!(bridge_ports(&link.0), [veth]);
    run.write_and_close_stdin(b"\n");
    let (out, stdout) = run.finish(LIMIT);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("done"), "{stdout}");
    assert!(
        bridge_ports(&link.0).is_empty(),
        "{:?}",
        bridge_ports(&link.0)
    );
    drop(link);
    frame.check();
}

#[test]
fn bad_network_values_are_refused_before_anything_is_done() {
    let Some((frame, image)) = Frame::setup("net refused").network().busybox("amd64") else {
        return;
    };
    let forward = nat_absent_before(frame.test());
    for (net, says) in [
        ("foo", "give none, host, bridge=BRIDGE or nat"),
        (
            "bridge=nonexistent",
            "the host has no network interface nonexistent",
        ),
        ("bridge=lo", "lo is not a bridge"),
        ("bridge=a/b", "is not an interface name"),
    ] {
        let out = frame.run(
            &mut sh_command(&image, &["--net", net], "echo started"),
            b"",
            LIMIT,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "--net {net}: {stderr}");
        assert!(stderr.contains(says), "--net {net}: {stderr}");
        assert!(!text(&out.stdout).contains("started"), "--net {net}");
    }
    // A missing program: one line naming the Debian package, nothing made.
    let bin = frame.dir("bin");
    for (have, package) in [
        (&[][..], "iproute2"),
        (&["ip"][..], "nftables"),
        (&["ip", "nft"][..], "dnsmasq-base"),
    ] {
        for program in have {
            let found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(|dir| Path::new(dir).join(program))
                .find(|p| p.exists())
                .expect("the program");
            let _ = std::os::unix::fs::symlink(found, bin.join(program));
        }
        let out = frame.run(
            sh_command(&image, &["--net", "nat"], "echo started").env("PATH", &bin),
            b"",
            LIMIT,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("--net")).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains(&format!("(apt-get install {package})")),
            "{stderr}"
        );
        assert_nat_gone(&forward);
    }
    // A run that fails after the network was set up (no such command:
    // 127) takes it down on its way out.
    let out = frame.run(
        rootrun()
            .args(["-q", "--net", "nat"])
            .arg(&image)
            .args(["--", "/no/such/command"]),
        b"",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert_nat_gone(&forward);
    frame.check();
}

#[test]
fn nat_gives_a_dhcp_lease_and_the_bridge_answers_then_all_of_it_goes() {
    let Some((frame, image)) = Frame::setup("net nat").network().busybox("amd64") else {
        return;
    };
    let forward = nat_absent_before(frame.test());
    let out = frame.run(
        &mut verbose_sh(&image, &["--net", "nat"], LEASE_AND_PING),
        b"",
        LIMIT,
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    // udhcpc: "lease of 10.213.87.N obtained from 10.213.87.1, ..."
    let lease = stdout
        .lines()
        .find(|l| l.contains("lease of"))
        .unwrap_or_else(|| panic!("no lease: {stdout}{stderr}"));
    let server = lease
        .split("obtained from ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_default();
    assert!(stdout.contains(&format!("pinged-{server}")), "{stdout}");
    // -v says which subnet it chose.
    assert!(
        stderr.contains(&format!("nat: set up bridge rootrun0 with {server}/24")),
        "{stderr}"
    );
    assert_nat_gone(&forward);
    frame.check();
}

#[test]
fn nat_is_shared_by_concurrent_containers_and_goes_with_the_last() {
    let Some((frame, image)) = Frame::setup("net nat shared").network().busybox("amd64") else {
        return;
    };
    let forward = nat_absent_before(frame.test());
    let script = format!("{LEASE_AND_PING}; read line; busybox ping -c 1 -W 5 \"$(cat /router)\" >/dev/null && echo again");
    let spawn = || {
        frame.live(
            &mut sh_command(&image, &["--net", "nat"], &script),
            Stdio::piped(),
        )
    };
    let mut first = spawn();
    first.expect("pinged-", LIMIT);
    let mut second = spawn();
    second.expect("pinged-", LIMIT);
    // One bridge with both veths, one dnsmasq with two leases, two users.
    let mut ports = bridge_ports(NAT_BRIDGE);
    ports.sort();
    let mut veths = vec![
        format!("rootrun-{}", first.id()),
        format!("rootrun-{}", second.id()),
    ];
    veths.sort();
    assert_eq!(ports, veths);
    assert_eq!(nat_dnsmasqs().len(), 1, "{:?}", nat_dnsmasqs());
    let leases =
        fs::read_to_string(Path::new(NAT_STATE).join("dnsmasq.leases")).unwrap_or_default();
    assert_eq!(leases.lines().count(), 2, "{leases}");
    let mut holders = users();
    holders.sort();
    let mut pids = vec![first.id().to_string(), second.id().to_string()];
    pids.sort();
    assert_eq!(holders, pids);

    first.write_and_close_stdin(b"\n");
    let (out, stdout) = first.finish(LIMIT);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("again"), "{stdout}");
    // The second one still has its network.
    assert_eq!(
        bridge_ports(NAT_BRIDGE),
        [format!("rootrun-{}", second.id())]
    );
    assert_eq!(users(), [second.id().to_string()]);
    assert_eq!(nat_dnsmasqs().len(), 1);

    second.write_and_close_stdin(b"\n");
    let (out, stdout) = second.finish(LIMIT);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("again"), "{stdout}");
    assert_nat_gone(&forward);
    frame.check();
}

#[test]
fn nat_left_by_a_killed_rootrun_is_swept_by_the_next() {
    let Some((frame, image)) = Frame::setup("net nat killed").network().busybox("amd64") else {
        return;
    };
    let forward = nat_absent_before(frame.test());
    let script = format!("{LEASE_AND_PING}; read line");
    let mut run = frame.live(
        &mut sh_command(&image, &["--net", "nat"], &script),
        Stdio::piped(),
    );
    run.expect("pinged-", LIMIT);
    run.signal(Signal::SIGKILL);
    let (out, _) = run.finish(LIMIT);
    assert_eq!(out.status.signal(), Some(9));
    // Nobody took it down: its user is dead but still listed.
    assert!(Path::new("/sys/class/net").join(NAT_BRIDGE).exists());
    assert_eq!(nat_dnsmasqs().len(), 1);
    // The next rootrun, whatever its network, sweeps it.
    let out = frame.run(&mut verbose_sh(&image, &[], "echo next"), b"", LIMIT);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("took down the NAT network (bridge rootrun0) left by killed rootruns"),
        "{stderr}"
    );
    assert_nat_gone(&forward);
    frame.check();
}

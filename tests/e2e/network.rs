//! The container's network: loopback is up in every container (#10), and
//! nothing else is there by default.

use std::time::Duration;

use crate::harness::{text, Frame};

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

//! The host side of `--net`: the check of a bridge the user names, and the
//! shared NAT network (`--net nat`): a bridge with an address, an nftables
//! table that masquerades its subnet and lets it forward, net.ipv4.ip_forward,
//! and a dnsmasq serving DHCP on it. It is set up by its first user and
//! taken down by its last; who uses it is one file per rootrun PID under
//! `STATE/users` (with the process's start time, so a reused PID does not
//! count), so a SIGKILLed rootrun is noticed by the next one, which sweeps
//! its entry and, if it was the last, the whole network. Every change is
//! made under an flock(2) on the host's `/run/rootrun` directory: the
//! directory itself, because it is never removed (rootrun's README), so no
//! rootrun ever waits on a lock file another one has just deleted.
//!
//! The host is changed through `ip` (iproute2), `nft` (nftables) and
//! `dnsmasq` run as programs, not through netlink from here: rootrun has no
//! netlink crate and nftables' netlink protocol (batches of expressions) is
//! far from small; these commands run only when the first user sets the
//! network up and the last takes it down (a joining or leaving rootrun runs
//! none), their error messages are the ones users know, and what rootrun
//! does is what a user would type to inspect or repair it. liblxc creates
//! and moves the container's veth pair itself (`lxc.net.0.*`).
//!
//! The state lives on the host's `/run/rootrun`, which rootrun's private
//! tmpfs hides once mounted, so it is reached through a descriptor of the
//! directory opened before (`/proc/self/fd/N/...`) by the rootrun that
//! leaves last, wherever its mount namespace is by then. dnsmasq is started
//! before rootrun leaves the host's mount namespace: a daemon started inside
//! it would keep that namespace, and all of rootrun's mounts, alive.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What went wrong with `--net`; exit status 125 like every rootrun error.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(
        "--net {mode} needs the program {program}, which is not installed \
         (apt-get install {package})"
    )]
    Missing {
        mode: &'static str,
        program: &'static str,
        package: &'static str,
    },
    #[error("--net bridge={0}: the host has no network interface {0}")]
    NoBridge(String),
    #[error("--net bridge={0}: {0} is not a bridge (ip -d link show {0})")]
    NotBridge(String),
    #[error("--net nat: {0}")]
    Nat(String),
}

/// `--net bridge=BR`: BR exists on the host and is a bridge.
pub fn check_bridge(name: &str) -> Result<(), NetError> {
    let dir = Path::new("/sys/class/net").join(name);
    if !dir.exists() {
        return Err(NetError::NoBridge(name.to_owned()));
    }
    if !dir.join("bridge").is_dir() {
        return Err(NetError::NotBridge(name.to_owned()));
    }
    Ok(())
}

/// The programs the NAT network is made with, by path.
struct Tools {
    ip: PathBuf,
    nft: PathBuf,
    dnsmasq: PathBuf,
}

/// The programs and the Debian packages that have them.
const PROGRAMS: [(&str, &str); 3] = [
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("dnsmasq", "dnsmasq-base"),
];

impl Tools {
    /// All three, or the first missing one named with its package.
    fn find() -> Result<Tools, NetError> {
        let mut found = Vec::new();
        for (program, package) in PROGRAMS {
            let path = find_program(program).ok_or(NetError::Missing {
                mode: "nat",
                program,
                package,
            })?;
            found.push(path);
        }
        let dnsmasq = found.pop().unwrap_or_default();
        let nft = found.pop().unwrap_or_default();
        let ip = found.pop().unwrap_or_default();
        Ok(Tools { ip, nft, dnsmasq })
    }
}

/// `program` in `$PATH` (as a shell finds it; the usual root PATH when
/// unset), an executable file.
fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|file| {
            fs::metadata(file).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `program args` (with `input` on stdin), quietly; an error is its
/// command line and the first line it wrote to stderr.
fn run(program: &Path, args: &[&str], input: Option<&str>) -> Result<(), String> {
    let described = || format!("{} {}", program.display(), args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", described()))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("{}: write its input: {e}", described()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", described()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    Err(format!("{} failed ({}): {first}", described(), out.status))
}

/// An IPv4 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Subnet {
    /// `a.b.c.d/len`, or a plain address (/32).
    pub fn parse(text: &str) -> Option<Subnet> {
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, len.parse().ok()?),
            None => (text, 32),
        };
        if len > 32 {
            return None;
        }
        Some(Subnet {
            addr: addr.parse().ok()?,
            len,
        })
    }

    fn mask(len: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
    }

    /// Whether the two prefixes share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let mask = Self::mask(self.len.min(other.len));
        u32::from(self.addr) & mask == u32::from(other.addr) & mask
    }

    /// The network's `n`th address (1: the gateway).
    pub fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from((u32::from(self.addr) & Self::mask(self.len)) + n)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The prefixes of `ip -4 -o addr show` and `ip -4 route show table all`
/// output: addresses with their prefix length, route destinations (the
/// default route, which overlaps everything, is not a collision).
pub fn host_prefixes(addrs: &str, routes: &str) -> Vec<Subnet> {
    let mut found: Vec<Subnet> = addrs
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            Subnet::parse(words.next()?)
        })
        .collect();
    const TYPES: [&str; 10] = [
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "anycast",
        "blackhole",
        "unreachable",
        "prohibit",
        "throw",
        "nat",
    ];
    found.extend(routes.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        let mut first = words.next()?;
        if TYPES.contains(&first) {
            first = words.next()?;
        }
        Subnet::parse(first).filter(|s| s.len > 0)
    }));
    found
}

/// The first candidate no host prefix overlaps.
pub fn choose_subnet(candidates: &[Subnet], taken: &[Subnet]) -> Option<Subnet> {
    candidates
        .iter()
        .find(|c| !taken.iter().any(|t| t.overlaps(c)))
        .copied()
}

fn output(program: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("{} {}: {e}", program.display(), args.join(" ")))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What `--net nat` is asked to set up.
pub struct NatSpec<'a> {
    pub bridge: &'a str,
    pub table: &'a str,
    /// The shared state directory on the host (`/run/rootrun/.net`).
    pub state: &'a Path,
    pub candidates: &'a [String],
}

/// How this rootrun joined the NAT network, for `-v`.
#[derive(Debug, Clone)]
pub struct Joined {
    pub bridge: String,
    pub subnet: Subnet,
    /// This rootrun set it up (else it joined `others` rootruns).
    pub created: bool,
    pub others: usize,
    /// Killed rootruns whose network this one took down first.
    pub swept: bool,
}

impl Joined {
    pub fn describe(&self, candidates: &[String]) -> String {
        let gateway = self.subnet.host(1);
        if self.created {
            format!(
                "nat: set up bridge {} with {gateway}/{} ({}: the first of {} that no host \
                 route or address overlaps), dnsmasq serving DHCP on it{}",
                self.bridge,
                self.subnet.len,
                self.subnet,
                candidates.join(", "),
                if self.swept {
                    "; a killed rootrun's network was taken down first"
                } else {
                    ""
                }
            )
        } else {
            format!(
                "nat: joined bridge {} ({gateway}/{}), in use by {} other rootrun(s)",
                self.bridge, self.subnet.len, self.others
            )
        }
    }
}

/// The state file's content: what the first user made, so that whoever
/// is last (or sweeps) can take exactly that down. Written before anything
/// is made.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    bridge: String,
    table: String,
    subnet: Subnet,
    /// net.ipv4.ip_forward before the network was set up ("0" or "1").
    forward_before: String,
}

impl State {
    fn text(&self) -> String {
        format!(
            "bridge={}\ntable={}\nsubnet={}\nip_forward_before={}\n",
            self.bridge, self.table, self.subnet, self.forward_before
        )
    }

    fn parse(text: &str) -> Option<State> {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Some(State {
            bridge: get("bridge")?,
            table: get("table")?,
            subnet: Subnet::parse(&get("subnet")?)?,
            forward_before: get("ip_forward_before")?,
        })
    }
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// The NAT bridge's MAC address: locally administered (0x02) and fixed;
/// the bridge is the only host of its segment that is not a container.
const BRIDGE_MAC: &str = "02:72:72:00:00:01";

/// The host's `/run/rootrun` (its directory, not a tmpfs mounted on it
/// later), held open; the lock and the way to the state.
struct NetDir {
    run_dir: File,
    /// `net`, the state directory's name in it.
    name: PathBuf,
    /// The state directory's host path, for dnsmasq's configuration.
    host_path: PathBuf,
}

impl NetDir {
    fn open(state: &Path) -> Result<NetDir, String> {
        let (parent, name) = match (state.parent(), state.file_name()) {
            (Some(parent), Some(name)) => (parent, name),
            _ => return Err(format!("{}: not a state directory", state.display())),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| format!("create {}: {e}", parent.display()))?;
        let run_dir = File::open(parent).map_err(|e| format!("open {}: {e}", parent.display()))?;
        Ok(NetDir {
            run_dir,
            name: name.into(),
            host_path: state.to_path_buf(),
        })
    }

    /// The state directory, or `name` in it, reached through the held
    /// descriptor (valid in any mount namespace).
    fn path(&self, name: &str) -> PathBuf {
        let dir =
            PathBuf::from(format!("/proc/self/fd/{}", self.run_dir.as_raw_fd())).join(&self.name);
        if name.is_empty() {
            dir
        } else {
            dir.join(name)
        }
    }

    fn lock(&self) -> Result<Flock<File>, String> {
        let file = self
            .run_dir
            .try_clone()
            .map_err(|e| format!("lock {}: {e}", self.host_path.display()))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| format!("lock {}: {e}", self.host_path.display()))
    }

    fn exists(&self) -> bool {
        self.path("").exists()
    }

    /// Removes the entries of rootruns that are gone; the number alive.
    fn sweep_users(&self) -> usize {
        let mut alive = 0;
        for entry in fs::read_dir(self.path("users"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let holder = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .zip(
                    fs::read_to_string(entry.path())
                        .ok()
                        .and_then(|t| t.trim().parse::<u64>().ok()),
                );
            match holder {
                Some((pid, start)) if super::proc::start_time(pid) == Some(start) => alive += 1,
                _ => {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        alive
    }

    fn add_user(&self, pid: u32) -> Result<(), String> {
        let start = super::proc::start_time(pid)
            .ok_or_else(|| format!("read the start time of process {pid}"))?;
        let path = self.path("users").join(pid.to_string());
        fs::write(&path, format!("{start}\n"))
            .map_err(|e| format!("write {}/users/{pid}: {e}", self.host_path.display()))
    }

    fn read_state(&self) -> Option<State> {
        State::parse(&fs::read_to_string(self.path("state")).ok()?)
    }
}

/// This rootrun's place in the NAT network: leaves it on drop (the last
/// user takes it down).
pub struct NatUser {
    dir: NetDir,
    pid: u32,
}

impl Drop for NatUser {
    fn drop(&mut self) {
        // A forked child never runs destructors (it _exits), but be sure.
        if std::process::id() != self.pid {
            return;
        }
        let Ok(_lock) = self.dir.lock() else {
            return;
        };
        let _ = fs::remove_file(self.dir.path("users").join(self.pid.to_string()));
        if self.dir.sweep_users() == 0 {
            teardown(&self.dir);
        }
    }
}

/// Joins the shared NAT network, setting it up if nobody uses it. On
/// failure everything this call made is gone again.
pub fn join_nat(spec: &NatSpec<'_>) -> Result<(NatUser, Joined), NetError> {
    let tools = Tools::find()?;
    let nat = NetError::Nat;
    let dir = NetDir::open(spec.state).map_err(nat)?;
    let _lock = dir.lock().map_err(nat)?;
    let pid = std::process::id();
    let alive = dir.sweep_users();
    if alive > 0 {
        let state = dir.read_state().ok_or_else(|| {
            NetError::Nat(format!(
                "{}/state is missing or unreadable while {alive} rootrun(s) use the network",
                spec.state.display()
            ))
        })?;
        if !Path::new("/sys/class/net").join(&state.bridge).exists() {
            return Err(NetError::Nat(format!(
                "bridge {} of the shared NAT network is gone (deleted by hand?) while {alive} \
                 rootrun(s) use it; it comes back when they have ended",
                state.bridge
            )));
        }
        dir.add_user(pid).map_err(nat)?;
        let joined = Joined {
            bridge: state.bridge,
            subnet: state.subnet,
            created: false,
            others: alive,
            swept: false,
        };
        return Ok((NatUser { dir, pid }, joined));
    }
    let swept = dir.exists();
    if swept {
        teardown(&dir);
    }
    let subnet = free_subnet(spec, &tools)?;
    let forward_before = fs::read_to_string(IP_FORWARD)
        .map(|t| t.trim().to_owned())
        .map_err(|e| NetError::Nat(format!("read {IP_FORWARD}: {e}")))?;
    let state = State {
        bridge: spec.bridge.to_owned(),
        table: spec.table.to_owned(),
        subnet,
        forward_before,
    };
    let made = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir.path("users"))
        .map_err(|e| format!("create {}/users: {e}", spec.state.display()))
        .and_then(|()| {
            fs::write(dir.path("state"), state.text())
                .map_err(|e| format!("write {}/state: {e}", spec.state.display()))
        })
        .and_then(|()| set_up(&dir, &tools, &state))
        .and_then(|()| dir.add_user(pid));
    if let Err(e) = made {
        teardown(&dir);
        return Err(NetError::Nat(e));
    }
    let joined = Joined {
        bridge: state.bridge,
        subnet,
        created: true,
        others: 0,
        swept,
    };
    Ok((NatUser { dir, pid }, joined))
}

/// The step every run takes: when every rootrun that used the NAT network
/// is gone (killed), take it down. Says so when it did.
pub fn sweep_nat(state: &Path) -> Option<String> {
    if !state.exists() {
        return None;
    }
    let dir = NetDir::open(state).ok()?;
    let _lock = dir.lock().ok()?;
    if !dir.exists() || dir.sweep_users() > 0 {
        return None;
    }
    let bridge = dir.read_state().map(|s| s.bridge);
    teardown(&dir);
    Some(format!(
        "took down the NAT network{} left by killed rootruns",
        bridge.map(|b| format!(" (bridge {b})")).unwrap_or_default()
    ))
}

/// A bridge or nftables table of that name that rootrun did not make
/// (no state says it did) is not taken over, nor a subnet the host uses.
fn free_subnet(spec: &NatSpec<'_>, tools: &Tools) -> Result<Subnet, NetError> {
    if Path::new("/sys/class/net").join(spec.bridge).exists() {
        return Err(NetError::Nat(format!(
            "the host has a network interface {} that rootrun did not make; delete it \
             (ip link delete {}) or use --net bridge={}",
            spec.bridge, spec.bridge, spec.bridge
        )));
    }
    if run(&tools.nft, &["list", "table", "ip", spec.table], None).is_ok() {
        return Err(NetError::Nat(format!(
            "the host has an nftables table ip {} that rootrun did not make; delete it \
             (nft delete table ip {})",
            spec.table, spec.table
        )));
    }
    let addrs = output(&tools.ip, &["-4", "-o", "addr", "show"]).map_err(NetError::Nat)?;
    let routes =
        output(&tools.ip, &["-4", "route", "show", "table", "all"]).map_err(NetError::Nat)?;
    let taken = host_prefixes(&addrs, &routes);
    let candidates: Vec<Subnet> = spec
        .candidates
        .iter()
        .filter_map(|c| Subnet::parse(c))
        .collect();
    choose_subnet(&candidates, &taken).ok_or_else(|| {
        NetError::Nat(format!(
            "each of the subnets rootrun can use ({}) overlaps a route or address of the host",
            spec.candidates.join(", ")
        ))
    })
}

/// Bridge, address, nftables table, ip_forward, dnsmasq, in that order.
fn set_up(dir: &NetDir, tools: &Tools, state: &State) -> Result<(), String> {
    let bridge = state.bridge.as_str();
    let gateway = format!("{}/{}", state.subnet.host(1), state.subnet.len);
    // A MAC address of its own: a bridge without one takes the lowest of
    // its ports', so when the container with that veth left, the bridge's
    // address changed under the others, whose ARP caches still named the
    // old one (their packets to the gateway were lost until the entry went
    // stale; the shared-network test caught it).
    run(
        &tools.ip,
        &[
            "link",
            "add",
            "name",
            bridge,
            "address",
            BRIDGE_MAC,
            "type",
            "bridge",
            "forward_delay",
            "0",
        ],
        None,
    )?;
    run(&tools.ip, &["addr", "add", &gateway, "dev", bridge], None)?;
    run(&tools.ip, &["link", "set", "dev", bridge, "up"], None)?;
    run(&tools.nft, &["-f", "-"], Some(&ruleset(state)))?;
    if state.forward_before == "0" {
        fs::write(IP_FORWARD, "1").map_err(|e| format!("write 1 to {IP_FORWARD}: {e}"))?;
    }
    start_dnsmasq(dir, tools, state)
}

/// Masquerading for the subnet going anywhere else, and forwarding to and
/// from the bridge allowed (an accept here does not override a drop in
/// another table of the host's: a firewall that drops forwarded packets
/// still does).
fn ruleset(state: &State) -> String {
    format!(
        "table ip {table} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {subnet} ip daddr != {subnet} masquerade\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tiifname \"{bridge}\" accept\n\
         \t\toifname \"{bridge}\" ct state established,related accept\n\
         \t}}\n\
         }}\n",
        table = state.table,
        subnet = state.subnet,
        bridge = state.bridge,
    )
}

/// dnsmasq's configuration: DHCP (and a DNS forwarder to the host's
/// resolvers, as LXD's bridge has) on the bridge only, nothing on lo.
/// `no-ping`: dnsmasq would otherwise ping each address before offering
/// it and drop the request meanwhile, so a first lease took 3 s (udhcpc's
/// second discover) instead of a few milliseconds; the subnet is rootrun's
/// own, where only dnsmasq's leases live.
fn dnsmasq_conf(host_dir: &Path, state: &State) -> String {
    let s = state.subnet;
    format!(
        "# rootrun --net nat: written by rootrun, removed with its network\n\
         interface={bridge}\n\
         except-interface=lo\n\
         bind-interfaces\n\
         listen-address={gateway}\n\
         no-hosts\n\
         dhcp-range={first},{last},255.255.255.0,1h\n\
         dhcp-authoritative\n\
         dhcp-no-override\n\
         no-ping\n\
         dhcp-leasefile={dir}/dnsmasq.leases\n\
         pid-file={dir}/dnsmasq.pid\n",
        bridge = state.bridge,
        gateway = s.host(1),
        first = s.host(2),
        last = s.host(254),
        dir = host_dir.display(),
    )
}

/// dnsmasq forks into the background once its sockets are bound (its
/// first process reports a start-up failure through its exit status), and
/// writes its PID file.
fn start_dnsmasq(dir: &NetDir, tools: &Tools, state: &State) -> Result<(), String> {
    let conf = dir.host_path.join("dnsmasq.conf");
    fs::write(
        dir.path("dnsmasq.conf"),
        dnsmasq_conf(&dir.host_path, state),
    )
    .map_err(|e| format!("write {}: {e}", conf.display()))?;
    // Its messages go to a file: the daemon keeps stderr open, and a pipe
    // would stay open with it.
    let errors = File::create(dir.path("dnsmasq.err"))
        .map_err(|e| format!("create {}/dnsmasq.err: {e}", dir.host_path.display()))?;
    let conf_arg = format!("--conf-file={}", conf.display());
    let status = Command::new(&tools.dnsmasq)
        .arg(&conf_arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(errors)
        .status()
        .map_err(|e| format!("{}: {e}", tools.dnsmasq.display()))?;
    if !status.success() {
        let mut text = String::new();
        let _ = File::open(dir.path("dnsmasq.err")).and_then(|mut f| f.read_to_string(&mut text));
        return Err(format!(
            "{} {conf_arg} failed ({status}): {}",
            tools.dnsmasq.display(),
            text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while dnsmasq_pid(dir).is_none() {
        if Instant::now() > deadline {
            return Err(format!(
                "dnsmasq started but wrote no PID file {}/dnsmasq.pid",
                dir.host_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The PID in dnsmasq's PID file, when that process is still the dnsmasq
/// rootrun started (its command line names rootrun's configuration).
fn dnsmasq_pid(dir: &NetDir) -> Option<i32> {
    let pid: i32 = fs::read_to_string(dir.path("dnsmasq.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let ours = format!(
        "--conf-file={}",
        dir.host_path.join("dnsmasq.conf").display()
    );
    cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == ours.as_bytes())
        .then_some(pid)
}

/// Takes down what the state file says was made (each part best effort:
/// a part never made, or gone already, is skipped), then the state.
/// Called with the lock held.
fn teardown(dir: &NetDir) {
    if let Some(pid) = dnsmasq_pid(dir) {
        let process = Pid::from_raw(pid);
        let _ = kill(process, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        // Until it has exited: a zombie counts as gone (rootrun is not its
        // parent, and whoever is may reap it late).
        while u32::try_from(pid).is_ok_and(|pid| super::proc::start_time(pid).is_some()) {
            if Instant::now() > deadline {
                let _ = kill(process, Signal::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    if let Some(state) = dir.read_state() {
        if let Some(nft) = find_program("nft") {
            let _ = run(&nft, &["delete", "table", "ip", &state.table], None);
        }
        if Path::new("/sys/class/net").join(&state.bridge).exists() {
            if let Some(ip) = find_program("ip") {
                let _ = run(&ip, &["link", "delete", "dev", &state.bridge], None);
            }
        }
        if state.forward_before == "0" {
            let _ = fs::write(IP_FORWARD, "0");
        }
    }
    let _ = fs::remove_dir_all(dir.path(""));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Subnet {
        Subnet::parse(text).unwrap()
    }

    #[test]
    fn subnets_overlap_when_they_share_an_address() {
        assert!(net("10.213.87.0/24").overlaps(&net("10.0.0.0/8")));
        assert!(net("10.213.87.0/24").overlaps(&net("10.213.87.5")));
        assert!(!net("10.213.87.0/24").overlaps(&net("10.213.88.0/24")));
        assert!(net("0.0.0.0/0").overlaps(&net("192.168.1.0/24")));
        assert_eq!(net("10.213.87.0/24").host(1), Ipv4Addr::new(10, 213, 87, 1));
        assert_eq!(Subnet::parse("10.1.2.3/33"), None);
        assert_eq!(net("172.29.87.0/24").to_string(), "172.29.87.0/24");
    }

    #[test]
    fn host_prefixes_come_from_addresses_and_routes_but_not_the_default_route() {
        let addrs = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                     2: eth0    inet 10.213.87.9/16 brd 10.213.255.255 scope global eth0\n";
        let routes = "default via 192.0.2.1 dev eth0\n\
                      192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2\n\
                      local 127.0.0.1 dev lo table local proto kernel scope host\n\
                      broadcast 192.0.2.255 dev eth0 table local proto kernel\n\
                      unreachable 172.29.0.0/16\n";
        let taken = host_prefixes(addrs, routes);
        assert!(taken.contains(&net("10.213.87.9/16")));
        assert!(taken.contains(&net("192.0.2.0/24")));
        assert!(taken.contains(&net("127.0.0.1/32")));
        assert!(taken.contains(&net("172.29.0.0/16")));
        assert!(!taken.iter().any(|t| t.len == 0));
        let candidates: Vec<Subnet> = ["10.213.87.0/24", "10.213.88.0/24", "172.29.87.0/24"]
            .iter()
            .map(|c| net(c))
            .collect();
        // 10.213.0.0/16 on eth0 takes both 10.213 ones, the route 172.29/16 the last.
        assert_eq!(choose_subnet(&candidates, &taken), None);
        let taken = host_prefixes("", routes);
        assert_eq!(
            choose_subnet(&candidates, &taken),
            Some(net("10.213.87.0/24"))
        );
    }

    #[test]
    fn the_state_file_reads_back_what_was_written() {
        let state = State {
            bridge: "rootrun0".into(),
            table: "rootrun".into(),
            subnet: net("10.213.87.0/24"),
            forward_before: "0".into(),
        };
        assert_eq!(State::parse(&state.text()), Some(state.clone()));
        assert_eq!(State::parse("bridge=x\n"), None);
        let conf = dnsmasq_conf(Path::new("/run/rootrun/.net"), &state);
        assert!(conf.contains("interface=rootrun0\n"), "{conf}");
        assert!(conf.contains("except-interface=lo\n"), "{conf}");
        assert!(conf.contains("bind-interfaces\n"), "{conf}");
        assert!(
            conf.contains("dhcp-range=10.213.87.2,10.213.87.254,"),
            "{conf}"
        );
        assert!(conf.contains("pid-file=/run/rootrun/.net/dnsmasq.pid\n"));
        let rules = ruleset(&state);
        assert!(rules.starts_with("table ip rootrun {"), "{rules}");
        assert!(
            rules.contains("ip saddr 10.213.87.0/24 ip daddr != 10.213.87.0/24 masquerade"),
            "{rules}"
        );
    }
}

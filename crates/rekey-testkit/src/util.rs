//! Small helpers shared by the other modules: a free loopback port and
//! writing a whole file.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// A loopback port that nothing listens on right now, for a server a test is about to
/// start or for "the server is down" tests.
///
/// Ports come from below the kernel's ephemeral range (where outgoing connections get
/// their local ports), so a busy test's own connections cannot take the port between this
/// answer and the server's bind: asking the kernel for port 0 gave an ephemeral port, and
/// once in CI a SIGKILL soak's restarted server found it taken by a client connection. A
/// process never gets the same port twice; each process starts at its own place.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static START: OnceLock<u32> = OnceLock::new();
    let Some((low, high)) = quiet_ports() else {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        return listener.local_addr().expect("local_addr").port();
    };
    let span = high - low;
    let start = *START.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        (std::process::id().wrapping_mul(2_654_435_761) ^ nanos) % span
    });
    for _ in 0..span {
        let port = low + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = u16::try_from(port).expect("ports fit in u16");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {low} and {high}");
}

/// The range `free_port` draws from: from 10000 up to the start of the ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 by default on Linux); none when an
/// unusual range leaves no room below it.
fn quiet_ports() -> Option<(u32, u32)> {
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    (ephemeral_low > 11_000).then_some((10_000, ephemeral_low))
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) {
    let mut f = fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(bytes)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

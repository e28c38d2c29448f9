//! Who is asking: the peer's IP, for rate limits and the audit trail.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The client's address. `X-Forwarded-For` counts only when the peer is a trusted proxy;
/// then the right-most address that is not itself a trusted proxy is the client (entries
/// further left were written by the client and prove nothing).
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = canonical(peer.ip());
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>().map(canonical) {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return ip,
            // A hop we cannot read: stop at the proxy rather than believe anything left of it.
            Err(_) => return peer,
        }
    }
    peer
}

/// The rate-limit key for a client.
pub fn client_key(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

/// `::ffff:10.0.0.1` and `10.0.0.1` are the same client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn an_untrusted_peer_cannot_claim_another_address() {
        let peer: SocketAddr = "203.0.113.9:4000".parse().unwrap();
        let ip = client_ip(peer, &headers("198.51.100.1"), &[]);
        assert_eq!(ip.to_string(), "203.0.113.9");
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_hops_are_ignored() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        // The client wrote "1.1.1.1" itself; the proxy appended the real address.
        let ip = client_ip(peer, &headers("1.1.1.1, 198.51.100.7"), &[proxy]);
        assert_eq!(ip.to_string(), "198.51.100.7");
        let ip = client_ip(peer, &headers("garbage"), &[proxy]);
        assert_eq!(ip.to_string(), "10.0.0.2");
        let mapped: SocketAddr = "[::ffff:10.0.0.2]:4000".parse().unwrap();
        assert_eq!(
            client_ip(mapped, &headers("198.51.100.7"), &[proxy]).to_string(),
            "198.51.100.7"
        );
    }
}

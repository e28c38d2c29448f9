//! Who is asking: the peer's IP, for rate limits and the audit trail.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The client's address. `X-Forwarded-For` counts only when the peer is a trusted proxy;
/// then the right-most address that is not itself a trusted proxy is the client (entries
/// further left were written by the client and prove nothing).
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = canonical(peer.ip());
    if !trusted.contains(&peer) {
        if trusted.is_empty() && peer.is_loopback() && headers.contains_key("x-forwarded-for") {
            warn_untrusted_proxy(peer);
        }
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
        match parse_hop(hop).map(canonical) {
            Some(ip) if trusted.contains(&ip) => continue,
            Some(ip) => return ip,
            // A hop we cannot read: stop at the proxy rather than believe anything left of it.
            None => return peer,
        }
    }
    peer
}

/// One `X-Forwarded-For` entry as proxies write them: `203.0.113.7`, `203.0.113.7:5100`,
/// `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`, possibly quoted.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return port_ok.then(|| inside.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6))?;
    }
    let (ip, port) = hop.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Said once: a proxy on this machine forwards requests, but none is trusted, so every client
/// behind it shares the proxy's one set of limits (and one client can use them all up).
fn warn_untrusted_proxy(peer: IpAddr) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::warn!(%peer, "requests come through a proxy on this machine (X-Forwarded-For) but trusted_proxies is empty: every client shares the proxy's rate limits and its connection cap; set trusted_proxies = \"{peer}\"");
        eprintln!(
            "rekeyd: warning: requests come through a proxy at {peer} (they carry X-Forwarded-For), \
             but trusted_proxies is empty, so every client behind it shares one set of rate limits. \
             Set trusted_proxies = \"{peer}\" (REKEY_TRUSTED_PROXIES)."
        );
    });
}

/// The rate-limit key for a client. An IPv6 client is its /64: one subscriber or host is
/// handed a whole /64, and keying by /128 would give it 2^64 fresh sets of limits.
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & !((1u128 << 64) - 1);
            format!("ip:{}/64", std::net::Ipv6Addr::from(net))
        }
    }
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

    #[test]
    fn hops_with_ports_and_brackets_name_the_client() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        for (hop, client) in [
            ("198.51.100.7:5100", "198.51.100.7"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"),
            ("\"198.51.100.7\"", "198.51.100.7"),
        ] {
            assert_eq!(client_ip(peer, &headers(hop), &[proxy]).to_string(), client, "{hop}");
        }
        for bad in ["[2001:db8::7]:x", "198.51.100.7:", "1.2.3:80", "unknown"] {
            assert_eq!(
                client_ip(peer, &headers(bad), &[proxy]).to_string(),
                "10.0.0.2",
                "{bad}"
            );
        }
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let a = client_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_key("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap());
        let other = client_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, "ip:2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(client_key("203.0.113.9".parse().unwrap()), "ip:203.0.113.9");
    }
}

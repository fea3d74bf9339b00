//! Which addresses a webhook may reach (server-side request forgery).
//!
//! Webhook URLs are chosen by tenants, so a request must never reach the deployment's own
//! network: loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT, multicast,
//! unspecified, documentation and other reserved ranges are refused, for IPv4, IPv6, and IPv4
//! embedded in IPv6 (mapped, compatible, NAT64, 6to4). An operator may allow ranges explicitly
//! (the local runner allows loopback). The sender checks every address DNS returns and connects
//! only to checked ones; URLs whose host is an IP literal are checked without DNS, here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use url::{Host, Url};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForbiddenAddress {
    #[error("{0} is a private, loopback, link-local or reserved address")]
    Reserved(IpAddr),
    #[error("`{0}` is not a network in CIDR form (like 10.0.0.0/8)")]
    BadNetwork(String),
}

/// The ranges an operator allows despite the rules (empty by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// Parses a comma-separated list of CIDR networks; empty allows nothing extra.
    pub fn parse(allowed: &str) -> Result<Self, ForbiddenAddress> {
        let allowed = allowed
            .split(',')
            .map(str::trim)
            .filter(|network| !network.is_empty())
            .map(|network| {
                network
                    .parse::<IpNet>()
                    .map_err(|_| ForbiddenAddress::BadNetwork(network.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// Whether a request may go to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), ForbiddenAddress> {
        let ip = canonical(ip);
        if self.allowed.iter().any(|network| network.contains(&ip)) || is_public(ip) {
            Ok(())
        } else {
            Err(ForbiddenAddress::Reserved(ip))
        }
    }

    /// Checks the host of `url` when it is an IP literal (which no resolver sees). URL parsing
    /// already turned decimal, octal and hex IPv4 forms into the address they mean.
    pub fn check_literal(&self, url: &Url) -> Result<(), ForbiddenAddress> {
        match url.host() {
            Some(Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(Host::Domain(_)) | None => Ok(()),
        }
    }
}

/// The IPv4 address an IPv6 address stands for, if it embeds one (mapped `::ffff:a.b.c.d`,
/// compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last_two = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(last_two()),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(last_two()),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last_two()),
        [0x2002, a, b, ..] => Some(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        )),
        _ => None,
    }
}

/// IPv4 embedded in IPv6 is judged as the IPv4 address it reaches.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_ipv4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

const RESERVED_V4: [(u32, u8); 16] = [
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network", incl. unspecified
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 CGNAT
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local, cloud metadata
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 documentation
    (0xc058_6300, 24), // 192.88.99.0/24 6to4 relay
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 documentation
    (0xcb00_7100, 24), // 203.0.113.0/24 documentation
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved, incl. broadcast
    (0xffff_ffff, 32), // 255.255.255.255 broadcast
];

const RESERVED_V6: [(u128, u8); 10] = [
    (0, 96),                      // ::/96 unspecified, loopback, compatible
    (0x0064_ff9b_0001 << 80, 48), // 64:ff9b:1::/48 local-use NAT64
    (0x0100 << 112, 64),          // 100::/64 discard
    (0x2001 << 112, 23),          // 2001::/23 IETF protocol assignments, Teredo
    (0x2001_0db8 << 96, 32),      // 2001:db8::/32 documentation
    (0x3fff << 112, 20),          // 3fff::/20 documentation
    (0xfc00 << 112, 7),           // fc00::/7 unique local
    (0xfe80 << 112, 10),          // fe80::/10 link-local
    (0xfec0 << 112, 10),          // fec0::/10 site-local (deprecated)
    (0xff00 << 112, 8),           // ff00::/8 multicast
];

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            !RESERVED_V4
                .iter()
                .any(|&(network, len)| bits >> (32 - len) == network >> (32 - len))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            !RESERVED_V6
                .iter()
                .any(|&(network, len)| bits >> (128 - len) == network >> (128 - len))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> AddressPolicy {
        AddressPolicy::default()
    }

    fn url_refused(raw: &str) -> bool {
        let url = Url::parse(raw).unwrap_or_else(|err| panic!("{raw}: {err}"));
        strict().check_literal(&url).is_err()
    }

    #[test]
    fn literal_bypass_forms_are_refused() {
        for raw in [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",   // decimal
            "https://0x7f000001/",   // hex
            "https://0x7f.0.0.1/",   // hex octet
            "https://0177.0.0.1/",   // octal
            "https://017700000001/", // octal, whole
            "https://0/",            // 0.0.0.0
            "https://0.0.0.0/",
            "https://[::]/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",   // IPv4-mapped
            "https://[::ffff:7f00:1]/",      // IPv4-mapped, hex
            "https://[::127.0.0.1]/",        // IPv4-compatible
            "https://[64:ff9b::a9fe:a9fe]/", // NAT64 of 169.254.169.254
            "https://[2002:7f00:1::]/",      // 6to4 of 127.0.0.1
            "https://[::ffff:169.254.169.254]/",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.1.2.3/",
            "https://172.31.255.255/",
            "https://192.168.0.1/",
            "https://100.64.0.1/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://240.0.0.1/",
            "https://192.0.2.10/",
            "https://198.51.100.7/",
            "https://203.0.113.9/",
            "https://198.18.0.1/",
            "https://[fe80::1]/",
            "https://[fc00::1]/",
            "https://[fd12:3456::1]/",
            "https://[ff02::1]/",
            "https://[2001:db8::1]/",
            "https://[2001::1]/", // Teredo
            "https://[fec0::1]/",
            "https://[100::1]/",
        ] {
            assert!(url_refused(raw), "{raw} was allowed");
        }
    }

    #[test]
    fn public_addresses_and_names_pass_the_literal_check() {
        for raw in [
            "https://93.184.215.14/",
            "https://8.8.8.8/",
            "https://[2606:4700:4700::1111]/",
            "https://[::ffff:8.8.8.8]/",
            "https://example.com/",
            "https://localhost/", // a name: its addresses are checked after DNS
        ] {
            assert!(!url_refused(raw), "{raw} was refused");
        }
    }

    #[test]
    fn resolved_addresses_are_checked_like_literals() {
        let policy = strict();
        for ip in [
            "127.0.0.53",
            "10.0.0.1",
            "::1",
            "::ffff:10.0.0.1",
            "fe80::abcd",
        ] {
            assert!(policy.check(ip.parse().unwrap()).is_err(), "{ip}");
        }
        assert!(policy.check("1.1.1.1".parse().unwrap()).is_ok());
    }

    #[test]
    fn operators_allow_ranges_explicitly() {
        let policy = AddressPolicy::parse("127.0.0.0/8, ::1/128").unwrap();
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("::1".parse().unwrap()).is_ok());
        assert!(policy.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("10.0.0.1".parse().unwrap()).is_err());
        assert_eq!(AddressPolicy::parse("").unwrap(), AddressPolicy::default());
        assert!(AddressPolicy::parse("10.0.0.0/33").is_err());
        assert!(AddressPolicy::parse("localhost").is_err());
    }
}

//! CIDR blocks a token is bound to (a token role's `token_bound_cidrs`): parsed when the role
//! is written, checked against the caller's address at every use of the token.

use std::net::IpAddr;

/// One address block: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (one host), as Vault's
    /// `parseutil.ParseAddrs` accepts them.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let bad = || format!("error parsing address {text:?}: not an IP address or CIDR block");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in the block. An IPv4 address seen as IPv6 (`::ffff:10.0.0.1`, from a
    /// dual-stack listener) counts as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(u128::from(net.to_bits()) << 96, u128::from(ip.to_bits()) << 96, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(net.to_bits(), ip.to_bits(), self.prefix),
            _ => false,
        }
    }
}

/// Whether every block of `inner` lies within some block of `outer` (an AppRole secret id's
/// CIDRs within its role's). Blocks that do not parse are in nothing.
pub fn subset(inner: &[String], outer: &[String]) -> bool {
    let outer: Vec<Cidr> = outer.iter().filter_map(|b| Cidr::parse(b).ok()).collect();
    inner.iter().all(|b| {
        Cidr::parse(b).is_ok_and(|b| outer.iter().any(|o| o.prefix <= b.prefix && o.contains(b.addr)))
    })
}

fn same_prefix(a: u128, b: u128, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    a & mask == b & mask
}

/// Vault's rendering: a host address alone, a block with its prefix length.
impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == host {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Whether a token bound to `blocks` may be used from `remote`: always when it is bound to
/// nothing, never when the caller's address is unknown.
pub fn allows(blocks: &[String], remote: Option<IpAddr>) -> bool {
    if blocks.is_empty() {
        return true;
    }
    let Some(remote) = remote else {
        return false;
    };
    // Blocks were checked when the role was written; one that no longer parses admits nobody.
    blocks.iter().filter_map(|b| Cidr::parse(b).ok()).any(|b| b.contains(remote))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_blocks_within_blocks() {
        let outer = ["10.0.0.0/8".to_string(), "192.168.1.5".to_string()];
        assert!(subset(&["10.1.0.0/16".into(), "192.168.1.5/32".into()], &outer));
        assert!(!subset(&["10.0.0.0/7".into()], &outer));
        assert!(!subset(&["11.0.0.0/16".into()], &outer));
        assert!(!subset(&["nonsense".into()], &outer));
        assert!(subset(&[], &outer));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_like_vaults() {
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse(" 127.0.0.1 ").unwrap().to_string(), "127.0.0.1");
        assert_eq!(Cidr::parse("127.0.0.1/32").unwrap().to_string(), "127.0.0.1");
        assert_eq!(Cidr::parse("2001:db8::/32").unwrap().to_string(), "2001:db8::/32");
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        for bad in ["", "10.0.0.0/33", "10.0.0/8", "::1/129", "10.0.0.0/", "10.0.0.0/+8", "host"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn membership_follows_the_prefix() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.255.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6 counts as IPv4");
        assert!(!net.contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.9")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
    }

    #[test]
    fn unbound_tokens_go_anywhere_bound_ones_only_from_their_blocks() {
        let blocks = vec!["10.0.0.0/8".to_string(), "192.168.1.7".to_string()];
        assert!(allows(&[], None));
        assert!(allows(&[], Some(ip("203.0.113.9"))));
        assert!(allows(&blocks, Some(ip("10.9.9.9"))));
        assert!(allows(&blocks, Some(ip("192.168.1.7"))));
        assert!(!allows(&blocks, Some(ip("192.168.1.8"))));
        assert!(!allows(&blocks, None), "an unknown caller address is refused");
    }
}

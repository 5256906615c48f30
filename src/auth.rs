//! Access control, protocol-neutral: who may connect (CIDR allow-lists) and who may do what
//! (users with passwords and command categories).
//!
//! Owns: [`Auth`] (the `[auth]` section once validated), [`Access`] (what one connection may
//! do), [`Category`], [`Cidr`], and the password check.
//! Must not touch: wire formats (each protocol decides how credentials arrive and what an
//! error looks like), sockets.
//! Invariants: passwords never leave this module in a printable form: [`Secret`]'s `Debug` is
//! redacted, so a logged `Config` or `Auth` shows `"<redacted>"`; the comparison does not stop
//! at the first differing byte. With auth off every connection has [`Access::ALL`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A password. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password read from the config.
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// Whether `candidate` is this password; the time taken depends only on the lengths.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let mine = self.0.as_bytes();
        let mut diff = u8::from(mine.len() != candidate.len());
        for (i, &b) in candidate.iter().enumerate() {
            diff |= b ^ mine.get(i % mine.len().max(1)).copied().unwrap_or(0);
        }
        diff == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// A group of commands a user may be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Commands that only read keys (GET, MGET, EXISTS, memcached get/gets, mg).
    Read,
    /// Commands that change keys (SET, DEL, INCR, EXPIRE, memcached set/delete/incr/touch).
    Write,
    /// Server-wide or dangerous commands (FLUSHALL, FLUSHDB, CONFIG, KEYS, flush_all,
    /// verbosity).
    Admin,
}

impl Category {
    fn bit(self) -> u8 {
        match self {
            Category::Read => 1,
            Category::Write => 2,
            Category::Admin => 4,
        }
    }

    /// The config spelling (`read`, `write`, `admin`).
    pub fn parse(s: &str) -> Option<Category> {
        match s {
            "read" => Some(Category::Read),
            "write" => Some(Category::Write),
            "admin" => Some(Category::Admin),
            _ => None,
        }
    }
}

/// What one connection may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// False until the client authenticated (when auth is on).
    pub authenticated: bool,
    categories: u8,
}

impl Access {
    /// Everything: auth is off, or the default user logged in.
    pub const ALL: Access = Access {
        authenticated: true,
        categories: 7,
    };
    /// Nothing until AUTH.
    pub const NONE: Access = Access {
        authenticated: false,
        categories: 0,
    };

    /// Whether a command of `category` may run.
    pub fn allows(self, category: Category) -> bool {
        self.categories & category.bit() != 0
    }
}

/// A named user from `[[auth.users]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The name given to `AUTH name password` (or memcached's `name password` token).
    pub name: String,
    /// The user's password.
    pub password: Secret,
    /// The categories the user may run.
    pub categories: Vec<Category>,
}

/// The `[auth]` section: off when there is neither a password nor a user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// The `default` user's password (Redis `requirepass`); it may run everything.
    pub password: Option<Secret>,
    /// Named users.
    pub users: Vec<User>,
}

impl Auth {
    /// Whether clients must authenticate.
    pub fn enabled(&self) -> bool {
        self.password.is_some() || !self.users.is_empty()
    }

    /// The access a new connection starts with.
    pub fn initial(&self) -> Access {
        if self.enabled() {
            Access::NONE
        } else {
            Access::ALL
        }
    }

    /// Checks `user` (None: the default user) and `password`; the access it grants, or None.
    pub fn login(&self, user: Option<&[u8]>, password: &[u8]) -> Option<Access> {
        let user = user.unwrap_or(b"default");
        if user == b"default" {
            return self
                .password
                .as_ref()
                .filter(|p| p.matches(password))
                .map(|_| Access::ALL);
        }
        let u = self.users.iter().find(|u| u.name.as_bytes() == user)?;
        if !u.password.matches(password) {
            return None;
        }
        Some(Access {
            authenticated: true,
            categories: u.categories.iter().fold(0, |acc, c| acc | c.bit()),
        })
    }
}

/// An address block such as `10.0.0.0/8` or `::1/128` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this block. An IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`) is
    /// matched as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or address/prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

/// Whether `ip` may connect to a listener with `allow` (None: everyone).
pub fn allowed(allow: Option<&[Cidr]>, ip: IpAddr) -> bool {
    allow.is_none_or(|list| list.iter().any(|c| c.contains(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().expect("cidr")
    }

    #[test]
    fn cidr_blocks() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(cidr("127.0.0.1/32").contains(ip("127.0.0.1")));
        assert!(!cidr("127.0.0.1/32").contains(ip("127.0.0.2")));
        assert!(cidr("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!cidr("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(cidr("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(cidr("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(cidr("::1").contains(ip("::1")));
        assert!(cidr("fd00::/8").contains(ip("fd12::1")));
        assert!(!cidr("fd00::/8").contains(ip("fe80::1")));
        assert!(!cidr("::/0").contains(ip("1.2.3.4")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nowhere/8".parse::<Cidr>().is_err());
        assert!(allowed(None, ip("1.2.3.4")));
        assert!(!allowed(Some(&[]), ip("1.2.3.4")));
    }

    #[test]
    fn logins_and_categories() {
        let auth = Auth {
            password: Some(Secret::new("topsecret".into())),
            users: vec![User {
                name: "reader".into(),
                password: Secret::new("r-pass".into()),
                categories: vec![Category::Read],
            }],
        };
        assert!(auth.enabled());
        assert_eq!(auth.initial(), Access::NONE);
        assert_eq!(auth.login(None, b"topsecret"), Some(Access::ALL));
        assert_eq!(
            auth.login(Some(b"default"), b"topsecret"),
            Some(Access::ALL)
        );
        assert_eq!(auth.login(None, b"topsecreT"), None);
        assert_eq!(auth.login(None, b"topsecret2"), None);
        assert_eq!(auth.login(None, b""), None);
        let reader = auth.login(Some(b"reader"), b"r-pass").expect("reader");
        assert!(reader.allows(Category::Read));
        assert!(!reader.allows(Category::Write));
        assert!(!reader.allows(Category::Admin));
        assert_eq!(auth.login(Some(b"reader"), b"topsecret"), None);
        assert_eq!(auth.login(Some(b"nobody"), b"r-pass"), None);
        let off = Auth::default();
        assert!(!off.enabled());
        assert_eq!(off.initial(), Access::ALL);
        assert_eq!(off.login(None, b"x"), None);
    }

    #[test]
    fn secrets_are_redacted() {
        let auth = Auth {
            password: Some(Secret::new("topsecret".into())),
            users: Vec::new(),
        };
        let shown = format!("{auth:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}

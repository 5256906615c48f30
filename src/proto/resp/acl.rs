//! RESP access control: which commands a connection may run before and after it logged in.
//!
//! Owns: the command → [`Category`] mapping and the NOAUTH / NOPERM / WRONGPASS replies.
//! Must not touch: framing, command semantics, the password check itself (`crate::auth`).
//! Invariants: with auth off every connection holds [`Access::ALL`] and [`check`] returns at
//! its first comparison; before login only the commands redis flags `no_auth` (AUTH, HELLO,
//! QUIT, RESET) run, everything else gets redis's `-NOAUTH Authentication required.`.

use super::command::Command;
use super::error::RespError;
use crate::auth::{Access, Auth, Category};
use crate::server::{Shared, Stats};

/// The category of `cmd`, or None for connection commands every logged-in user may run
/// (PING, ECHO, HELLO, AUTH, SELECT, QUIT, CLIENT, COMMAND, INFO, TIME, ...).
pub fn category(cmd: Command) -> Option<Category> {
    match cmd {
        Command::FlushAll
        | Command::FlushDb
        | Command::Config
        | Command::Keys
        | Command::Save
        | Command::BgSave
        | Command::PfDebug
        | Command::PfSelfTest => Some(Category::Admin),
        _ if cmd.flags().contains(&"write") => Some(Category::Write),
        _ if cmd.flags().contains(&"readonly") => Some(Category::Read),
        _ => None,
    }
}

/// Whether a connection holding `access` may run `cmd`.
pub fn check(cmd: Command, access: Access) -> Result<(), RespError> {
    if access == Access::ALL {
        return Ok(());
    }
    if !access.authenticated {
        if cmd.flags().contains(&"no_auth") {
            return Ok(());
        }
        return Err(RespError::NoAuth);
    }
    match category(cmd) {
        Some(c) if !access.allows(c) => Err(RespError::NoPerm(cmd.wire())),
        _ => Ok(()),
    }
}

/// Logs in `user` (None: the default user) with `password` against the server's `[auth]`,
/// counting the attempt. None when auth is off (the caller answers as redis without a
/// password does).
pub fn login(
    shared: &Shared,
    user: Option<&[u8]>,
    password: &[u8],
) -> Option<Result<Access, RespError>> {
    let auth: &Auth = &shared.auth.load();
    if !auth.enabled() {
        return None;
    }
    Some(match auth.login(user, password) {
        Some(access) => {
            Stats::add(&shared.stats.auth_ok, 1);
            Ok(access)
        }
        None => {
            Stats::add(&shared.stats.auth_errors, 1);
            Err(RespError::WrongPass)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_command_flags() {
        assert_eq!(category(Command::Get), Some(Category::Read));
        assert_eq!(category(Command::MultiGet), Some(Category::Read));
        assert_eq!(category(Command::Set), Some(Category::Write));
        assert_eq!(category(Command::Delete), Some(Category::Write));
        assert_eq!(category(Command::FlushAll), Some(Category::Admin));
        assert_eq!(category(Command::Config), Some(Category::Admin));
        assert_eq!(category(Command::Ping), None);
        assert_eq!(check(Command::Auth, Access::NONE), Ok(()));
        assert_eq!(check(Command::Hello, Access::NONE), Ok(()));
        assert!(check(Command::Ping, Access::NONE).is_err());
        assert_eq!(check(Command::FlushAll, Access::ALL), Ok(()));
    }
}

//! Client authentication for the `authorization` block: user passwords (plain or
//! bcrypt), a token, nkey signatures of the server nonce, and `no_auth_user`.
//!
//! [`Users`] is compiled once from the configuration and the command line, then
//! checks each CONNECT in nats-server's order (§3.1 of the behaviour notes):
//! nkey, users list, token, single user. It holds no I/O and draws no
//! randomness: the caller supplies the nonce's random bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use data_encoding::{BASE32_NOPAD, BASE64, BASE64URL_NOPAD};
use ed25519_dalek::{Signature, VerifyingKey};
use subtle::ConstantTimeEq;

use crate::account::{Accounts, GLOBAL_ACCOUNT};
use crate::config::options::{AccountConfig, Authorization, Config, Permissions, User};
use crate::config::{ConfigError, Pos};
use crate::proto::ConnectOptions;
use crate::tls_map::{self, CertIdentity};

/// nats-server's authorization timeout when none (or zero) is configured.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The prefix byte of a public user nkey (the `U` of its text form).
const NKEY_USER_PREFIX: u8 = 20 << 3;

/// bcrypt's accepted cost range.
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// Everything the engine needs to admit clients: who may log in, and the
/// accounts they log in to.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// The identities and their credentials and permissions.
    pub users: Users,
    /// The accounts the identities belong to.
    pub accounts: Accounts,
}

impl Auth {
    /// No authentication; every client in `$G`.
    pub fn none() -> Auth {
        Auth::default()
    }

    /// The users and accounts a configuration describes, with the single
    /// user, password or token of the command line (`--user`, `--pass`,
    /// `--auth`) over the file's. Every check the server makes before it
    /// starts is here (imports against exports, cycles, duplicate users,
    /// credentials, `no_auth_user`), so `-t` and start-up agree; each error
    /// carries the position of what is at fault.
    pub fn from_config(
        config: &Config,
        flag_user: Option<&str>,
        flag_pass: Option<&str>,
        flag_token: Option<&str>,
    ) -> Result<Auth, ConfigError> {
        let accounts = Accounts::from_config(config)?;
        let mut users = Users::new(
            config.authorization.as_ref(),
            &config.accounts,
            config.no_auth_user.as_deref(),
            flag_user,
            flag_pass,
            flag_token,
        )
        .map_err(|e| {
            let pos = match e.site {
                ErrorSite::Authorization => {
                    config.authorization.as_ref().and_then(|a| a.pos.clone())
                }
                ErrorSite::User(pos) => pos,
                ErrorSite::NoAuthUser => config.no_auth_user_pos.clone(),
            };
            ConfigError {
                pos,
                message: e.message,
            }
        })?;
        // With TLS, a login may take the handshake's time and a second more
        // unless the block says otherwise (nats-server's default).
        let explicit = config
            .authorization
            .as_ref()
            .and_then(|a| a.timeout)
            .is_some_and(|t| !t.is_zero());
        if let (Some(tls), false) = (&config.server.tls, explicit) {
            users.timeout = tls.timeout() + Duration::from_secs(1);
        }
        Ok(Auth { users, accounts })
    }
}

/// Why a set of users was refused, and where the mistake is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsersError {
    /// What is wrong.
    pub message: String,
    /// What it is about.
    pub site: ErrorSite,
}

/// What a [`UsersError`] is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorSite {
    /// The `authorization` block's own settings (or the command-line flags over them).
    Authorization,
    /// One user of a `users` list, written at this position.
    User(Option<Pos>),
    /// `no_auth_user`.
    NoAuthUser,
}

impl UsersError {
    fn block(message: String) -> UsersError {
        UsersError {
            message,
            site: ErrorSite::Authorization,
        }
    }

    fn user(message: String, user: &User) -> UsersError {
        UsersError {
            message,
            site: ErrorSite::User(user.pos.clone()),
        }
    }

    fn no_auth_user(message: String) -> UsersError {
        UsersError {
            message,
            site: ErrorSite::NoAuthUser,
        }
    }
}

impl fmt::Display for UsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsersError {}

/// Who may log in, compiled from the `authorization` block and the command line.
#[derive(Clone, Debug)]
pub struct Users {
    /// Every identity; its position is [`AuthUser::index`].
    entries: Vec<Entry>,
    /// Password users of the `users` list, by name.
    by_name: BTreeMap<String, usize>,
    /// nkey users of the `users` list, by public key.
    by_nkey: BTreeMap<String, usize>,
    /// The single user/password or token identity.
    single: Option<usize>,
    /// The identity of clients that present no credentials.
    no_auth: Option<usize>,
    timeout: Duration,
    plaintext: bool,
}

/// An authenticated identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthUser<'a> {
    /// User name, nkey, or "" for the token and the anonymous identity.
    pub name: &'a str,
    /// Own permissions, else the block's `default_permissions`, else `None`
    /// (unrestricted).
    pub permissions: Option<&'a Permissions>,
    /// Stable id of the identity (`0..` in configuration order), for the
    /// engine's compiled-permissions table.
    pub index: usize,
    /// The account the identity logs in to (`$G` outside `accounts`).
    pub account: &'a str,
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    credential: Credential,
    permissions: Option<Permissions>,
    account: String,
    /// The permissions are its block's `default_permissions`.
    defaulted: bool,
    /// Where the identity was configured.
    pos: Option<Pos>,
}

/// How an identity logs in, and where it and its permissions come from: what
/// the permission audit reports about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentityOrigin<'a> {
    /// How it logs in.
    pub login: Login,
    /// Its permissions are its block's `default_permissions`, not its own.
    pub defaulted: bool,
    /// Where it was configured (`None` for flags and the anonymous identity).
    pub pos: Option<&'a Pos>,
}

/// How an identity logs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login {
    /// A password kept in plain text in the configuration.
    PlainPassword,
    /// A bcrypt-hashed password.
    BcryptPassword,
    /// The `authorization` block's token.
    Token,
    /// An nkey signature.
    Nkey,
    /// No credentials: authentication is off.
    Anonymous,
}

#[derive(Clone)]
enum Credential {
    /// A user's password, plain or bcrypt.
    Password(String),
    /// The block's token, plain or bcrypt.
    Token(String),
    /// An nkey user's public key.
    Nkey(VerifyingKey),
    /// Nobody to check: authentication is off.
    Anonymous,
}

impl fmt::Debug for Credential {
    // Never print secrets, not even into a debug log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Password(_) => f.write_str("Password(..)"),
            Credential::Token(_) => f.write_str("Token(..)"),
            Credential::Nkey(_) => f.write_str("Nkey"),
            Credential::Anonymous => f.write_str("Anonymous"),
        }
    }
}

/// `Some` only for a non-empty string: nats-server treats "" as "not set".
fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

impl Default for Users {
    fn default() -> Self {
        Users::none()
    }
}

impl Users {
    /// No authentication: every client is the unrestricted anonymous identity.
    pub fn none() -> Users {
        Users {
            entries: vec![Entry {
                name: String::new(),
                credential: Credential::Anonymous,
                permissions: None,
                account: GLOBAL_ACCOUNT.to_string(),
                defaulted: false,
                pos: None,
            }],
            by_name: BTreeMap::new(),
            by_nkey: BTreeMap::new(),
            single: None,
            no_auth: None,
            timeout: DEFAULT_TIMEOUT,
            plaintext: false,
        }
    }

    /// Compiles the `authorization` block (`None` = none), the users of the
    /// `accounts` block, and the command-line flags `--user`, `--pass`,
    /// `--auth`, which override the block's single user, password and token
    /// field by field, as in nats-server.
    ///
    /// `no_auth_user` names the identity of clients that present no
    /// credentials; it must exist. A block's `default_permissions` go to every
    /// identity of that block without permissions of its own: the
    /// `authorization` defaults do not reach account users.
    ///
    /// Errors where nats-server would silently ignore a setting: a token
    /// together with a user/password or a users list, a single user together
    /// with a users list (also when the flags bring them together), a password
    /// without a user and without a users list (nats-server would run with no
    /// authentication), duplicate users, invalid nkeys, malformed bcrypt hashes.
    pub fn new(
        auth: Option<&Authorization>,
        accounts: &[AccountConfig],
        no_auth_user: Option<&str>,
        flag_user: Option<&str>,
        flag_pass: Option<&str>,
        flag_token: Option<&str>,
    ) -> Result<Users, UsersError> {
        let none = Authorization::default();
        let auth = auth.unwrap_or(&none);
        let user = non_empty(flag_user).or(non_empty(auth.user.as_deref()));
        // A `PASS` variable inside the block is also its `pass` key (keys are
        // case-insensitive): with a users list and no single user, nats-server
        // ignores it, and configurations in the wild rely on that pattern.
        let block_password = non_empty(auth.password.as_deref())
            .filter(|_| auth.user.is_some() || flag_user.is_some() || auth.users.is_empty());
        let password = non_empty(flag_pass).or(block_password);
        let token = non_empty(flag_token).or(non_empty(auth.token.as_deref()));
        let flags = [flag_user, flag_pass, flag_token]
            .iter()
            .any(|f| non_empty(*f).is_some());
        let conflict = |message: &str| {
            let source = if flags {
                " (counting --user, --pass and --auth from the command line)"
            } else {
                ""
            };
            Err(UsersError::block(format!(
                "authorization: {message}{source}"
            )))
        };
        if token.is_some() && (user.is_some() || password.is_some()) {
            return conflict("can not have a token and a user/password");
        }
        if password.is_some() && user.is_none() {
            return conflict("a password needs a user");
        }
        let list_users = !auth.users.is_empty() || accounts.iter().any(|a| !a.users.is_empty());
        if token.is_some() && list_users {
            return conflict("can not have a token and a users array");
        }
        if user.is_some() && list_users {
            return conflict("can not have a single user/pass and a users array");
        }

        let mut users = Users {
            entries: Vec::new(),
            by_name: BTreeMap::new(),
            by_nkey: BTreeMap::new(),
            single: None,
            no_auth: None,
            timeout: auth
                .timeout
                .filter(|t| !t.is_zero())
                .unwrap_or(DEFAULT_TIMEOUT),
            // As nats-server: only passwords count, tokens do not.
            plaintext: password.is_some_and(|p| !looks_like_bcrypt(p)),
        };
        let default = &auth.default_permissions;
        for u in &auth.users {
            users
                .add_list_user(u, default, GLOBAL_ACCOUNT)
                .map_err(|message| UsersError::user(message, u))?;
        }
        for account in accounts {
            for u in &account.users {
                users
                    .add_list_user(u, &account.default_permissions, &account.name)
                    .map_err(|message| UsersError::user(message, u))?;
            }
        }

        // At most one of these (checked above); the block's defaults apply to
        // them too, so a default set in the block is never silently dropped.
        let single = match (user, token) {
            (Some(user), _) => Some(Entry {
                name: user.to_string(),
                credential: Credential::Password(password.unwrap_or("").to_string()),
                permissions: default.clone(),
                account: GLOBAL_ACCOUNT.to_string(),
                defaulted: default.is_some(),
                pos: auth.pos.clone(),
            }),
            (None, Some(token)) => Some(Entry {
                name: String::new(),
                credential: Credential::Token(token.to_string()),
                permissions: default.clone(),
                account: GLOBAL_ACCOUNT.to_string(),
                defaulted: default.is_some(),
                pos: auth.pos.clone(),
            }),
            (None, None) => None,
        };
        if let Some(entry) = single {
            if let Credential::Password(p) | Credential::Token(p) = &entry.credential {
                check_bcrypt(p, "authorization password/token").map_err(UsersError::block)?;
            }
            users.single = Some(users.entries.len());
            users.entries.push(entry);
        }
        if users.entries.is_empty() {
            // Authentication off: one anonymous identity, so the engine can
            // call `authenticate` uniformly.
            users.entries.push(Entry {
                name: String::new(),
                credential: Credential::Anonymous,
                permissions: default.clone(),
                account: GLOBAL_ACCOUNT.to_string(),
                defaulted: default.is_some(),
                pos: None,
            });
        }

        if let Some(name) = non_empty(no_auth_user) {
            if users.by_name.is_empty() && users.by_nkey.is_empty() {
                return Err(UsersError::no_auth_user(format!(
                    "no_auth_user: {name:?} present, but users/nkeys are not defined"
                )));
            }
            let index = users.by_name.get(name).or_else(|| users.by_nkey.get(name));
            match index {
                Some(&i) => users.no_auth = Some(i),
                None => {
                    return Err(UsersError::no_auth_user(format!(
                        "no_auth_user: {name:?} not present as user or nkey in authorization block"
                    )))
                }
            }
        }
        Ok(users)
    }

    /// Adds a user of a `users` list (of `authorization` or of an account).
    fn add_list_user(
        &mut self,
        u: &User,
        default: &Option<Permissions>,
        account: &str,
    ) -> Result<(), String> {
        let index = self.entries.len();
        let permissions = u.permissions.clone().or_else(|| default.clone());
        let defaulted = u.permissions.is_none() && default.is_some();
        let entry = match (&u.name, &u.nkey) {
            (Some(name), None) => {
                if name.is_empty() {
                    return Err("authorization: a user name can not be empty".into());
                }
                let password = u.password.clone().unwrap_or_default();
                check_bcrypt(&password, &format!("password of user {name:?}"))?;
                self.plaintext |= !looks_like_bcrypt(&password);
                if self.by_name.insert(name.clone(), index).is_some() {
                    return Err(format!("Duplicate user {name:?} detected"));
                }
                Entry {
                    name: name.clone(),
                    credential: Credential::Password(password),
                    permissions,
                    account: account.to_string(),
                    defaulted,
                    pos: u.pos.clone(),
                }
            }
            (None, Some(nkey)) => {
                if u.password.is_some() {
                    return Err(format!("nkey user {nkey:?} can not have a password"));
                }
                let key = decode_user_nkey(nkey)
                    .ok_or_else(|| format!("not a valid user nkey: {nkey:?}"))?;
                if self.by_nkey.insert(nkey.clone(), index).is_some() {
                    return Err(format!("Duplicate user {nkey:?} detected"));
                }
                Entry {
                    name: nkey.clone(),
                    credential: Credential::Nkey(key),
                    permissions,
                    account: account.to_string(),
                    defaulted,
                    pos: u.pos.clone(),
                }
            }
            (Some(_), Some(_)) => {
                return Err("a user has either a \"user\" or an \"nkey\", not both".into())
            }
            (None, None) => return Err("a user needs a \"user\" or an \"nkey\"".into()),
        };
        self.entries.push(entry);
        Ok(())
    }

    /// The identity anonymous clients get (`no_auth_user`), by name.
    pub fn no_auth_user(&self) -> Option<&str> {
        self.no_auth.map(|i| self.entries[i].name.as_str())
    }

    /// Whether a user or nkey of this name (or key) exists.
    pub fn has_user(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
            || self.by_nkey.contains_key(name)
            || self.single.is_some_and(|i| self.entries[i].name == name)
    }

    /// Anyone must authenticate (INFO `auth_required`). False when
    /// `no_auth_user` is set, as nats-server reports it.
    pub fn auth_required(&self) -> bool {
        self.enabled() && self.no_auth.is_none()
    }

    /// Authentication is configured at all: the first op must be CONNECT and
    /// the auth timer runs (also with `no_auth_user`).
    pub fn enabled(&self) -> bool {
        !self.by_name.is_empty() || !self.by_nkey.is_empty() || self.single.is_some()
    }

    /// nkey users exist, so INFO carries a nonce.
    pub fn needs_nonce(&self) -> bool {
        !self.by_nkey.is_empty()
    }

    /// nkey users exist (nats-server then names the nkey a failed login
    /// presented in its `authentication error` line).
    pub fn has_nkey_users(&self) -> bool {
        !self.by_nkey.is_empty()
    }

    /// Password users of a `users` list exist (in `authorization` or in an
    /// account): nats-server then names the user a failed login presented.
    pub fn has_user_list(&self) -> bool {
        !self.by_name.is_empty()
    }

    /// Whether the nkey users (keys, permissions, accounts) differ from
    /// `other`'s: nats-server's reload then logs `Reloaded: authorization
    /// nkey users`.
    pub fn nkey_users_differ(&self, other: &Users) -> bool {
        let nkeys = |users: &Users| {
            users
                .by_nkey
                .values()
                .map(|&i| {
                    let e = &users.entries[i];
                    (e.name.clone(), e.permissions.clone(), e.account.clone())
                })
                .collect::<Vec<_>>()
        };
        nkeys(self) != nkeys(other)
    }

    /// The block's single user, its password and its token, as configured
    /// (for the reload's `Reloaded: authorization username` lines).
    pub fn single_credentials(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        let Some(entry) = self.single.map(|i| &self.entries[i]) else {
            return (None, None, None);
        };
        match &entry.credential {
            Credential::Password(p) => (Some(entry.name.as_str()), Some(p.as_str()), None),
            Credential::Token(t) => (None, None, Some(t.as_str())),
            Credential::Nkey(_) | Credential::Anonymous => (None, None, None),
        }
    }

    /// `authorization { timeout }`, default 2 s.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Some password is stored in plain text (nats-server then warns
    /// "Plaintext passwords detected, use nkeys or bcrypt").
    pub fn has_plaintext_passwords(&self) -> bool {
        self.plaintext
    }

    /// The identity with this index, if any.
    pub fn identity(&self, index: usize) -> Option<AuthUser<'_>> {
        self.entries.get(index).map(|e| AuthUser {
            name: &e.name,
            permissions: e.permissions.as_ref(),
            index,
            account: &e.account,
        })
    }

    /// How identity `index` logs in and where it was configured.
    pub fn origin(&self, index: usize) -> Option<IdentityOrigin<'_>> {
        self.entries.get(index).map(|e| IdentityOrigin {
            login: match &e.credential {
                Credential::Password(p) if looks_like_bcrypt(p) => Login::BcryptPassword,
                Credential::Password(_) => Login::PlainPassword,
                Credential::Token(_) => Login::Token,
                Credential::Nkey(_) => Login::Nkey,
                Credential::Anonymous => Login::Anonymous,
            },
            defaulted: e.defaulted,
            pos: e.pos.as_ref(),
        })
    }

    /// Every identity `authenticate` can return, in index order (`0..n`).
    pub fn identities(&self) -> impl Iterator<Item = AuthUser<'_>> + '_ {
        (0..self.entries.len()).filter_map(|i| self.identity(i))
    }

    /// Checks a CONNECT; `nonce` is the nonce sent in this connection's INFO.
    /// `None` means Authorization Violation. With authentication off every
    /// client is the anonymous identity.
    ///
    /// Only a client that presents no user, password, token or nkey at all
    /// becomes `no_auth_user`: wrong credentials never fall back to it.
    pub fn authenticate(
        &self,
        connect: &ConnectOptions,
        nonce: Option<&str>,
        cert: Option<&CertIdentity>,
    ) -> Option<AuthUser<'_>> {
        match self.check(connect, nonce, cert) {
            Verdict::Done(index) => self.identity(index?),
            Verdict::Bcrypt(check) => check.verify().then(|| self.identity(check.identity))?,
        }
    }

    /// [`Users::authenticate`] for a client already logged in (a reload):
    /// a bcrypt hash it proved its secret against at login
    /// (`proven_hash`) is not verified again; only a changed hash costs a
    /// bcrypt run.
    pub fn reauthenticate(
        &self,
        connect: &ConnectOptions,
        nonce: Option<&str>,
        cert: Option<&CertIdentity>,
        proven_hash: Option<&str>,
    ) -> Option<AuthUser<'_>> {
        match self.check(connect, nonce, cert) {
            Verdict::Bcrypt(check) if Some(check.hash.as_str()) == proven_hash => {
                self.identity(check.identity)
            }
            Verdict::Done(index) => self.identity(index?),
            Verdict::Bcrypt(check) => check.verify().then(|| self.identity(check.identity))?,
        }
    }

    /// The bcrypt hash user `index` logs in with, if its secret is one.
    pub fn bcrypt_hash(&self, index: usize) -> Option<&str> {
        match &self.entries.get(index)?.credential {
            Credential::Password(s) | Credential::Token(s) if looks_like_bcrypt(s) => Some(s),
            _ => None,
        }
    }

    /// [`Users::authenticate`] without its costly part: a password or token
    /// stored as a bcrypt hash is not verified here but returned as a
    /// [`BcryptCheck`], to run off the event loop (it takes tens of
    /// milliseconds by design). Every other check is made.
    pub fn check(
        &self,
        connect: &ConnectOptions,
        nonce: Option<&str>,
        cert: Option<&CertIdentity>,
    ) -> Verdict {
        if !self.enabled() {
            return Verdict::Done(Some(0));
        }
        let user = non_empty(connect.user.as_deref());
        let pass = non_empty(connect.pass.as_deref());
        let token = non_empty(connect.auth_token.as_deref());
        let nkey = non_empty(connect.nkey.as_deref());
        if user.is_none() && pass.is_none() && token.is_none() && nkey.is_none() {
            if let Some(i) = self.no_auth {
                return Verdict::Done(Some(i));
            }
        }
        // As nats-server, an nkey counts only where nkey users exist; then an
        // unknown one fails outright.
        if let (Some(nkey), false) = (nkey, self.by_nkey.is_empty()) {
            let found = self.by_nkey.get(nkey).and_then(|&index| {
                let Credential::Nkey(key) = &self.entries.get(index)?.credential else {
                    return None;
                };
                let sig = non_empty(connect.sig.as_deref())?;
                verify_signature(key, nonce?, sig).then_some(index)
            });
            return Verdict::Done(found);
        }
        // `verify_and_map`: the certificate names the user, whatever the
        // CONNECT says.
        if let (Some(cert), false) = (cert, self.by_name.is_empty()) {
            return Verdict::Done(self.map_certificate(cert));
        }
        if let (Some(user), false) = (user, self.by_name.is_empty()) {
            let Some(&index) = self.by_name.get(user) else {
                return Verdict::Done(None);
            };
            return match &self.entries[index].credential {
                Credential::Password(stored) => Self::secret(index, stored, pass.unwrap_or("")),
                _ => Verdict::Done(None),
            };
        }
        let Some(index) = self.single else {
            return Verdict::Done(None);
        };
        let entry = &self.entries[index];
        match &entry.credential {
            Credential::Token(stored) => Self::secret(index, stored, token.unwrap_or("")),
            Credential::Password(stored) => {
                // Check the name first: a wrong name must not cost a bcrypt run.
                if bool::from(entry.name.as_bytes().ct_eq(user.unwrap_or("").as_bytes())) {
                    Self::secret(index, stored, pass.unwrap_or(""))
                } else {
                    Verdict::Done(None)
                }
            }
            Credential::Nkey(_) | Credential::Anonymous => Verdict::Done(None),
        }
    }

    /// The user a client certificate stands for, by nats-server's rules
    /// (see [`crate::tls_map`]).
    fn map_certificate(&self, cert: &CertIdentity) -> Option<usize> {
        let by_name = |name: &str| self.by_name.get(name).copied();
        if let Some(index) = cert.names().find_map(by_name) {
            return Some(index);
        }
        if let Some(dn) = &cert.dn {
            let users: Vec<(usize, Vec<tls_map::Rdn>)> = self
                .by_name
                .iter()
                .filter_map(|(name, &i)| Some((i, tls_map::parse_dn(name)?)))
                .collect();
            let equal = users.iter().find(|(_, u)| tls_map::dn_equal(u, dn));
            let reordered = || users.iter().find(|(_, u)| tls_map::dn_rdns_match(u, dn));
            if let Some((index, _)) = equal.or_else(reordered) {
                return Some(*index);
            }
        }
        cert.subject_names().iter().find_map(|s| by_name(s))
    }

    /// A secret compared at once, or a bcrypt hash to verify later.
    fn secret(index: usize, stored: &str, given: &str) -> Verdict {
        if looks_like_bcrypt(stored) {
            Verdict::Bcrypt(BcryptCheck {
                identity: index,
                hash: stored.to_string(),
                given: given.to_string(),
            })
        } else {
            Verdict::Done(bool::from(stored.as_bytes().ct_eq(given.as_bytes())).then_some(index))
        }
    }
}

/// What [`Users::check`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The identity the credentials stand for (by index), or `None`: refused.
    Done(Option<usize>),
    /// The identity, if a bcrypt hash matches the secret given.
    Bcrypt(BcryptCheck),
}

/// A bcrypt verification, to run on a worker thread ([`BcryptCheck::verify`]
/// needs nothing but its own data).
#[derive(Clone, PartialEq, Eq)]
pub struct BcryptCheck {
    /// The identity it logs in as when the secret matches.
    pub identity: usize,
    hash: String,
    given: String,
}

impl BcryptCheck {
    /// Whether the secret matches the hash: tens of milliseconds of CPU.
    pub fn verify(&self) -> bool {
        bcrypt::verify(&self.given, &self.hash).unwrap_or(false)
    }

    /// The stored hash checked against.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

impl fmt::Debug for BcryptCheck {
    /// Never shows the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BcryptCheck")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// 11 random bytes (from the caller's RNG) as nats-server's nonce: 15
/// characters of unpadded base64url.
pub fn encode_nonce(random: [u8; 11]) -> String {
    BASE64URL_NOPAD.encode(&random)
}

/// nats-server's test: `$2a$`, `$2b$`, `$2x$` or `$2y$`, a two-digit cost, `$`.
fn looks_like_bcrypt(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 7
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

/// A stored secret that looks like bcrypt must be a usable hash; otherwise
/// nobody could ever log in with it, and the mistake would go unnoticed.
fn check_bcrypt(stored: &str, what: &str) -> Result<(), String> {
    if !looks_like_bcrypt(stored) {
        return Ok(());
    }
    match stored.parse::<bcrypt::HashParts>() {
        Ok(parts) if BCRYPT_COSTS.contains(&parts.get_cost()) => Ok(()),
        _ => Err(format!(
            "{what} looks like a bcrypt hash but is not a valid one"
        )),
    }
}

/// Checks `sig` (base64url without padding, or standard base64) as the
/// Ed25519 signature of the nonce string's bytes.
fn verify_signature(key: &VerifyingKey, nonce: &str, sig: &str) -> bool {
    let bytes = BASE64URL_NOPAD
        .decode(sig.as_bytes())
        .or_else(|_| BASE64.decode(sig.as_bytes()));
    let Ok(signature) = bytes
        .map_err(|_| ())
        .and_then(|b| Signature::from_slice(&b).map_err(|_| ()))
    else {
        return false;
    };
    // Strict verification refuses weak keys and malleable signatures; honest
    // signatures always pass it.
    key.verify_strict(nonce.as_bytes(), &signature).is_ok()
}

/// Decodes a public user nkey: base32 of prefix byte, 32-byte Ed25519 key and
/// CRC-16 (little-endian) of the first 33 bytes.
fn decode_user_nkey(nkey: &str) -> Option<VerifyingKey> {
    let raw = BASE32_NOPAD.decode(nkey.as_bytes()).ok()?;
    let [prefix, key @ .., lo, hi] = raw.as_slice() else {
        return None;
    };
    let key: &[u8; 32] = key.try_into().ok()?;
    let body = raw.get(..33)?;
    if *prefix != NKEY_USER_PREFIX || crc16(body) != u16::from_le_bytes([*lo, *hi]) {
        return None;
    }
    VerifyingKey::from_bytes(key).ok()
}

/// CRC-16/XMODEM, the checksum of nkeys.
fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::options::{SubjectPermission, User};

    fn connect(json: &str) -> ConnectOptions {
        let mut c = ConnectOptions::default();
        c.apply(json.as_bytes()).unwrap();
        c
    }

    fn password_user(name: &str, password: &str) -> User {
        User {
            name: Some(name.into()),
            password: Some(password.into()),
            ..User::default()
        }
    }

    fn nkey_user(nkey: &str) -> User {
        User {
            nkey: Some(nkey.into()),
            ..User::default()
        }
    }

    fn with_users(users: Vec<User>) -> Authorization {
        Authorization {
            users,
            ..Authorization::default()
        }
    }

    fn publish_only(subject: &str) -> Permissions {
        Permissions {
            publish: Some(SubjectPermission {
                allow: vec![subject.into()],
                deny: vec![],
                ..Default::default()
            }),
            ..Permissions::default()
        }
    }

    fn users(auth: &Authorization) -> Users {
        Users::new(Some(auth), &[], None, None, None, None).unwrap()
    }

    fn name_of(users: &Users, json: &str) -> Option<String> {
        users
            .authenticate(&connect(json), None, None)
            .map(|u| u.name.to_string())
    }

    fn bcrypt_2a(password: &str) -> String {
        bcrypt::hash_with_result(password, 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoA)
    }

    #[test]
    fn plain_passwords_of_the_users_list() {
        let u = users(&with_users(vec![
            password_user("alice", "secret"),
            password_user("bob", "hunter2"),
        ]));
        assert!(u.enabled() && u.auth_required() && !u.needs_nonce());
        assert!(u.has_plaintext_passwords());
        let bob = u
            .authenticate(&connect(r#"{"user":"bob","pass":"hunter2"}"#), None, None)
            .unwrap();
        assert_eq!((bob.name, bob.index, bob.permissions), ("bob", 1, None));
        assert_eq!(
            name_of(&u, r#"{"user":"alice","pass":"secret"}"#).as_deref(),
            Some("alice")
        );
        for refused in [
            r#"{"user":"alice","pass":"hunter2"}"#,
            r#"{"user":"alice"}"#,
            r#"{"user":"carol","pass":"secret"}"#,
            r#"{"pass":"secret"}"#,
            r#"{"auth_token":"secret"}"#,
            r#"{}"#,
        ] {
            assert_eq!(name_of(&u, refused), None, "{refused}");
        }
    }

    #[test]
    fn bcrypt_passwords() {
        let hash = bcrypt_2a("s3cr3t");
        assert!(hash.starts_with("$2a$04$"));
        let u = users(&with_users(vec![password_user("alice", &hash)]));
        assert!(!u.has_plaintext_passwords());
        assert!(name_of(&u, r#"{"user":"alice","pass":"s3cr3t"}"#).is_some());
        assert!(name_of(&u, r#"{"user":"alice","pass":"wrong"}"#).is_none());
        assert!(name_of(&u, r#"{"user":"alice","pass":""}"#).is_none());
        // The same hash under the $2y$ prefix verifies too.
        let y = hash.replacen("$2a$", "$2y$", 1);
        let u = users(&with_users(vec![password_user("alice", &y)]));
        assert!(name_of(&u, r#"{"user":"alice","pass":"s3cr3t"}"#).is_some());
    }

    #[test]
    fn a_proven_bcrypt_hash_is_not_verified_again() {
        let hash = bcrypt_2a("s3cr3t");
        let u = users(&with_users(vec![password_user("alice", &hash)]));
        assert_eq!(u.bcrypt_hash(0), Some(hash.as_str()));
        // Proof that nothing is verified: a wrong secret passes with the
        // hash proven at login (a reload never sees a changed secret: the
        // CONNECT is the same one).
        let wrong = connect(r#"{"user":"alice","pass":"wrong"}"#);
        assert!(u.reauthenticate(&wrong, None, None, Some(&hash)).is_some());
        // A changed hash is verified: the old proof does not count.
        let other = bcrypt_2a("s3cr3t");
        assert!(u.reauthenticate(&wrong, None, None, Some(&other)).is_none());
        let right = connect(r#"{"user":"alice","pass":"s3cr3t"}"#);
        assert!(u.reauthenticate(&right, None, None, Some(&other)).is_some());
        assert!(u.reauthenticate(&right, None, None, None).is_some());
    }

    #[test]
    fn malformed_bcrypt_is_a_configuration_error() {
        for bad in [
            "$2a$10$tooshort",
            "$2a$99$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
        ] {
            let err = Users::new(
                Some(&with_users(vec![password_user("alice", bad)])),
                &[],
                None,
                None,
                None,
                None,
            )
            .unwrap_err()
            .message;
            assert!(err.contains("alice") && err.contains("bcrypt"), "{err}");
            assert!(!err.contains(bad), "the secret must not be echoed: {err}");
        }
        // Not bcrypt-shaped: a plain password that happens to start with '$'.
        let u = users(&with_users(vec![password_user("a", "$2a$x")]));
        assert!(name_of(&u, r#"{"user":"a","pass":"$2a$x"}"#).is_some());
    }

    #[test]
    fn tokens_plain_and_bcrypt() {
        for stored in ["tok3n".to_string(), bcrypt_2a("tok3n")] {
            let auth = Authorization {
                token: Some(stored),
                ..Authorization::default()
            };
            let u = users(&auth);
            assert!(u.enabled() && u.auth_required());
            assert!(!u.has_plaintext_passwords());
            let who = u
                .authenticate(&connect(r#"{"auth_token":"tok3n"}"#), None, None)
                .unwrap();
            assert_eq!((who.name, who.index), ("", 0));
            assert!(name_of(&u, r#"{"auth_token":"token"}"#).is_none());
            assert!(name_of(&u, r#"{"user":"tok3n","pass":"tok3n"}"#).is_none());
            assert!(name_of(&u, r#"{}"#).is_none());
        }
    }

    #[test]
    fn single_user_and_password() {
        let auth = Authorization {
            user: Some("derek".into()),
            password: Some("porkchop".into()),
            ..Authorization::default()
        };
        let u = users(&auth);
        assert!(u.has_plaintext_passwords());
        assert_eq!(
            name_of(&u, r#"{"user":"derek","pass":"porkchop"}"#).as_deref(),
            Some("derek")
        );
        for refused in [
            r#"{"user":"derek","pass":"wrong"}"#,
            r#"{"user":"other","pass":"porkchop"}"#,
            r#"{"pass":"porkchop"}"#,
            r#"{"user":"derek"}"#,
        ] {
            assert_eq!(name_of(&u, refused), None, "{refused}");
        }
    }

    #[test]
    fn flags_override_the_block() {
        let auth = Authorization {
            user: Some("a".into()),
            password: Some("x".into()),
            ..Authorization::default()
        };
        let u = Users::new(Some(&auth), &[], None, Some("b"), Some("y"), None).unwrap();
        assert!(name_of(&u, r#"{"user":"b","pass":"y"}"#).is_some());
        assert!(name_of(&u, r#"{"user":"a","pass":"x"}"#).is_none());
        // Field by field: only the password replaced.
        let u = Users::new(Some(&auth), &[], None, None, Some("y"), None).unwrap();
        assert!(name_of(&u, r#"{"user":"a","pass":"y"}"#).is_some());
        assert!(name_of(&u, r#"{"user":"a","pass":"x"}"#).is_none());
        // A token flag replaces the block's token.
        let auth = Authorization {
            token: Some("old".into()),
            ..Authorization::default()
        };
        let u = Users::new(Some(&auth), &[], None, None, None, Some("new")).unwrap();
        assert!(name_of(&u, r#"{"auth_token":"new"}"#).is_some());
        assert!(name_of(&u, r#"{"auth_token":"old"}"#).is_none());
        // Flags alone enable authentication; empty flags count as absent.
        let u = Users::new(None, &[], None, None, None, Some("t")).unwrap();
        assert!(u.enabled() && name_of(&u, r#"{"auth_token":"t"}"#).is_some());
        let u = Users::new(None, &[], None, Some(""), Some(""), Some("")).unwrap();
        assert!(!u.enabled());
    }

    #[test]
    fn conflicting_settings_are_errors() {
        let list = with_users(vec![password_user("alice", "pw")]);
        let token = Authorization {
            token: Some("t".into()),
            ..Authorization::default()
        };
        let cases: [(Option<&Authorization>, [Option<&str>; 3]); 5] = [
            (Some(&list), [Some("u"), Some("p"), None]),
            (Some(&list), [None, None, Some("t")]),
            (Some(&token), [Some("u"), Some("p"), None]),
            (None, [None, Some("p"), None]),
            (None, [Some("u"), Some("p"), Some("t")]),
        ];
        for (auth, [user, pass, tok]) in cases {
            let err = Users::new(auth, &[], None, user, pass, tok)
                .unwrap_err()
                .message;
            assert!(err.contains("--user, --pass and --auth"), "{err}");
        }
        let both = Authorization {
            password: Some("p".into()),
            ..Authorization::default()
        };
        let err = Users::new(Some(&both), &[], None, None, None, None)
            .unwrap_err()
            .message;
        assert_eq!(err, "authorization: a password needs a user");
        // With a users list, a lone block password (a `PASS` variable) is ignored, as in nats-server.
        let pass_variable = Authorization {
            password: Some("p".into()),
            ..with_users(vec![password_user("a", "1")])
        };
        let users =
            Users::new(Some(&pass_variable), &[], None, None, None, None).expect("accepted");
        assert_eq!(
            name_of(&users, r#"{"user":"a","pass":"1"}"#).as_deref(),
            Some("a")
        );
        assert_eq!(name_of(&users, r#"{"pass":"p"}"#), None);
        let dup = with_users(vec![password_user("a", "1"), password_user("a", "2")]);
        let err = Users::new(Some(&dup), &[], None, None, None, None)
            .unwrap_err()
            .message;
        assert_eq!(err, "Duplicate user \"a\" detected");
    }

    #[test]
    fn nkey_signatures() {
        let kp = nkeys::KeyPair::new_user();
        let public = kp.public_key();
        let u = users(&with_users(vec![
            nkey_user(&public),
            password_user("alice", "pw"),
        ]));
        assert!(u.needs_nonce() && u.auth_required());
        assert!(u.has_plaintext_passwords());
        let nonce = encode_nonce([7; 11]);
        let sig = kp.sign(nonce.as_bytes()).unwrap();
        let check = |nkey: &str, sig: Option<String>, nonce: Option<&str>| {
            let c = ConnectOptions {
                nkey: Some(nkey.to_string()),
                sig,
                ..ConnectOptions::default()
            };
            u.authenticate(&c, nonce, None)
                .map(|a| (a.name.to_string(), a.index))
        };
        let url = BASE64URL_NOPAD.encode(&sig);
        assert_eq!(
            check(&public, Some(url.clone()), Some(&nonce)),
            Some((public.clone(), 0))
        );
        // Standard (padded) base64 is accepted as well.
        let std = BASE64.encode(&sig);
        assert!(std.ends_with('='));
        assert!(check(&public, Some(std), Some(&nonce)).is_some());
        // Signature of another nonce, a corrupted one, garbage, none at all.
        let other = BASE64URL_NOPAD.encode(&kp.sign(b"AAAAAAAAAAAAAAA").unwrap());
        assert!(check(&public, Some(other), Some(&nonce)).is_none());
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(check(&public, Some(BASE64URL_NOPAD.encode(&bad)), Some(&nonce)).is_none());
        assert!(check(&public, Some("!!not base64!!".into()), Some(&nonce)).is_none());
        assert!(check(
            &public,
            Some(BASE64URL_NOPAD.encode(&sig[..32])),
            Some(&nonce)
        )
        .is_none());
        assert!(check(&public, None, Some(&nonce)).is_none());
        assert!(check(&public, Some(String::new()), Some(&nonce)).is_none());
        // No nonce was sent: nothing to have signed.
        assert!(check(&public, Some(url.clone()), None).is_none());
        // An unknown nkey fails, even signed by its own key.
        let stranger = nkeys::KeyPair::new_user();
        let stranger_sig = BASE64URL_NOPAD.encode(&stranger.sign(nonce.as_bytes()).unwrap());
        assert!(check(&stranger.public_key(), Some(stranger_sig), Some(&nonce)).is_none());
        // An unknown nkey fails even with valid user/password beside it.
        let c = connect(&format!(
            r#"{{"nkey":"{}","user":"alice","pass":"pw"}}"#,
            stranger.public_key()
        ));
        assert!(u.authenticate(&c, Some(&nonce), None).is_none());
    }

    #[test]
    fn invalid_nkeys_in_the_configuration_are_errors() {
        let public = nkeys::KeyPair::new_user().public_key();
        // Break the checksum by changing one character.
        let last = if public.ends_with('A') { "B" } else { "A" };
        let broken = format!("{}{last}", &public[..55]);
        let account = nkeys::KeyPair::new_account().public_key();
        for bad in [broken.as_str(), account.as_str(), "UABC", ""] {
            let err = Users::new(
                Some(&with_users(vec![nkey_user(bad)])),
                &[],
                None,
                None,
                None,
                None,
            )
            .unwrap_err()
            .message;
            assert!(err.contains("not a valid user nkey"), "{err}");
        }
    }

    #[test]
    fn no_auth_user_for_clients_without_credentials() {
        let auth = with_users(vec![
            password_user("alice", "pw"),
            password_user("bob", "pw2"),
        ]);
        let u = Users::new(Some(&auth), &[], Some("bob"), None, None, None).unwrap();
        assert!(u.enabled() && !u.auth_required());
        assert_eq!(name_of(&u, "{}").as_deref(), Some("bob"));
        assert_eq!(
            name_of(&u, r#"{"user":"","pass":""}"#).as_deref(),
            Some("bob")
        );
        assert_eq!(
            name_of(&u, r#"{"user":"alice","pass":"pw"}"#).as_deref(),
            Some("alice")
        );
        // Wrong credentials never fall back to the no-auth user.
        for refused in [
            r#"{"user":"alice","pass":"bad"}"#,
            r#"{"user":"carol"}"#,
            r#"{"pass":"pw2"}"#,
            r#"{"auth_token":"x"}"#,
            r#"{"nkey":"UABC"}"#,
        ] {
            assert_eq!(name_of(&u, refused), None, "{refused}");
        }

        // An nkey no-auth user needs no signature when nothing is presented.
        let public = nkeys::KeyPair::new_user().public_key();
        let auth = with_users(vec![nkey_user(&public)]);
        let u = Users::new(Some(&auth), &[], Some(&public), None, None, None).unwrap();
        assert!(u.needs_nonce() && !u.auth_required());
        assert_eq!(name_of(&u, "{}"), Some(public.clone()));
        let c = connect(&format!(r#"{{"nkey":"{public}"}}"#));
        assert!(u.authenticate(&c, Some("nonce"), None).is_none());
    }

    #[test]
    fn no_auth_user_must_exist() {
        let auth = with_users(vec![password_user("alice", "pw")]);
        let err = Users::new(Some(&auth), &[], Some("ghost"), None, None, None)
            .unwrap_err()
            .message;
        assert!(err.contains("\"ghost\" not present"), "{err}");
        let token = Authorization {
            token: Some("t".into()),
            ..Authorization::default()
        };
        for auth in [None, Some(&token)] {
            let err = Users::new(auth, &[], Some("alice"), None, None, None)
                .unwrap_err()
                .message;
            assert!(err.contains("users/nkeys are not defined"), "{err}");
        }
        // "" means unset, as in nats-server.
        assert!(Users::new(None, &[], Some(""), None, None, None).is_ok());
    }

    #[test]
    fn default_permissions_only_for_users_without_their_own() {
        let public = nkeys::KeyPair::new_user().public_key();
        let own = publish_only("own");
        let default = publish_only("default");
        let mut alice = password_user("alice", "pw");
        alice.permissions = Some(own.clone());
        let auth = Authorization {
            users: vec![alice, password_user("bob", "pw"), nkey_user(&public)],
            default_permissions: Some(default.clone()),
            ..Authorization::default()
        };
        let u = users(&auth);
        let perms: Vec<_> = u.identities().map(|i| (i.index, i.permissions)).collect();
        assert_eq!(
            perms,
            vec![(0, Some(&own)), (1, Some(&default)), (2, Some(&default))]
        );
        let alice = u
            .authenticate(&connect(r#"{"user":"alice","pass":"pw"}"#), None, None)
            .unwrap();
        assert_eq!(alice.permissions, Some(&own));
        // Without a default, users without permissions are unrestricted.
        let u = users(&with_users(vec![password_user("bob", "pw")]));
        assert_eq!(u.identity(0).unwrap().permissions, None);
        assert_eq!(u.identity(1), None);
    }

    #[test]
    fn no_authorization_means_an_unrestricted_anonymous_user() {
        let empty = Authorization::default();
        for auth in [None, Some(&empty)] {
            let u = Users::new(auth, &[], None, None, None, None).unwrap();
            assert!(!u.enabled() && !u.auth_required() && !u.needs_nonce());
            assert!(!u.has_plaintext_passwords());
            assert_eq!(u.timeout(), Duration::from_secs(2));
            let anonymous = AuthUser {
                name: "",
                permissions: None,
                index: 0,
                account: "$G",
            };
            for json in ["{}", r#"{"user":"x","pass":"y","auth_token":"z"}"#] {
                assert_eq!(u.authenticate(&connect(json), None, None), Some(anonymous));
            }
            assert_eq!(u.identities().collect::<Vec<_>>(), vec![anonymous]);
        }
        let none = Users::none();
        assert!(!none.enabled() && !none.needs_nonce() && !none.has_plaintext_passwords());
        let anonymous = none.authenticate(&connect(r#"{"user":"x"}"#), Some("n"), None);
        assert_eq!(
            anonymous.map(|a| (a.name, a.index, a.permissions)),
            Some(("", 0, None))
        );
    }

    #[test]
    fn timeout_from_the_block() {
        let auth = Authorization {
            token: Some("t".into()),
            timeout: Some(Duration::from_millis(500)),
            ..Authorization::default()
        };
        assert_eq!(users(&auth).timeout(), Duration::from_millis(500));
        let zero = Authorization {
            timeout: Some(Duration::ZERO),
            ..auth
        };
        assert_eq!(users(&zero).timeout(), Duration::from_secs(2));
    }

    #[test]
    fn nonce_encoding() {
        assert_eq!(encode_nonce([0; 11]), "AAAAAAAAAAAAAAA");
        assert_eq!(encode_nonce([0xff; 11]), "______________8");
        let mut rng = crate::rng::Rng::new(3);
        for _ in 0..100 {
            let mut bytes = [0u8; 11];
            for b in &mut bytes {
                *b = rng.next_u64() as u8;
            }
            let nonce = encode_nonce(bytes);
            assert_eq!(nonce.len(), 15);
            assert!(nonce
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            assert_eq!(BASE64URL_NOPAD.decode(nonce.as_bytes()).unwrap(), bytes);
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let auth = with_users(vec![password_user("alice", "sup3rsecret")]);
        let text = format!("{:?}", users(&auth));
        assert!(
            text.contains("alice") && !text.contains("sup3rsecret"),
            "{text}"
        );
    }

    #[test]
    fn bcrypt_shape() {
        for yes in ["$2a$10$x", "$2b$04$", "$2x$31$abc", "$2y$99$"] {
            assert!(looks_like_bcrypt(yes), "{yes}");
        }
        for no in [
            "", "$2a$", "$2c$10$x", "$2a$1$x", "$2a$100$", "2a$10$x", "$2a$1x$",
        ] {
            assert!(!looks_like_bcrypt(no), "{no}");
        }
    }

    #[test]
    fn a_certificate_maps_to_a_user_by_nats_server_rules() {
        let u = users(&with_users(vec![
            password_user("a@example.com", ""),
            password_user("host.example.com", ""),
            password_user("O=acme, CN=bob", ""),
            password_user("CN=carol,OU=eng", ""),
            password_user("CN=dave,DC=example,DC=com", ""),
        ]));
        let name = |cert: CertIdentity| {
            let verdict = u.check(&connect(r#"{"user":"a@example.com"}"#), None, Some(&cert));
            match verdict {
                Verdict::Done(i) => i.map(|i| u.entries[i].name.clone()),
                Verdict::Bcrypt(_) => panic!("no password is checked"),
            }
        };
        let rdns = |pairs: &[(&str, &str)]| -> Vec<tls_map::Rdn> {
            pairs
                .iter()
                .map(|(t, v)| vec![(t.to_string(), v.to_string())])
                .collect()
        };
        // Email first, then DNS names.
        let cert = CertIdentity {
            emails: vec!["a@example.com".into()],
            dns_names: vec!["host.example.com".into()],
            ..CertIdentity::default()
        };
        assert_eq!(name(cert).as_deref(), Some("a@example.com"));
        let cert = CertIdentity {
            emails: vec!["other@example.com".into()],
            dns_names: vec!["host.example.com".into()],
            ..CertIdentity::default()
        };
        assert_eq!(name(cert).as_deref(), Some("host.example.com"));
        // A distinguished name equal, then one with its RDNs reordered.
        let cert = CertIdentity {
            dn: Some(rdns(&[("CN", "carol"), ("OU", "eng")])),
            ..CertIdentity::default()
        };
        assert_eq!(name(cert).as_deref(), Some("CN=carol,OU=eng"));
        let cert = CertIdentity {
            dn: Some(rdns(&[("CN", "bob"), ("O", "acme")])),
            ..CertIdentity::default()
        };
        assert_eq!(name(cert).as_deref(), Some("O=acme, CN=bob"));
        // The printed subject with its DCs, or alone.
        let cert = CertIdentity {
            subject: "CN=dave".into(),
            domain_components: "DC=example,DC=com".into(),
            ..CertIdentity::default()
        };
        assert_eq!(name(cert).as_deref(), Some("CN=dave,DC=example,DC=com"));
        let cert = CertIdentity {
            subject: "CN=nobody".into(),
            ..CertIdentity::default()
        };
        assert_eq!(name(cert), None, "the CONNECT's user does not count");
    }
}

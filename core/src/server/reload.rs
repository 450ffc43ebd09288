//! Configuration reload: applying new options, users and accounts to the running server.

use std::time::Duration;

use hashbrown::HashMap;

use crate::account::AccountStats;
use crate::auth::{Auth, Users};
use crate::config::duration::format_duration;
use crate::errors::{removed_subscription_violation, ClientError, CloseReason};
use crate::options::Options;
use crate::perms::SubscribeDecision;
use crate::proto::encode::go_quote;
use crate::sublist::SubKey;
use crate::time::Time;

use super::routing::STALL_HIGH_WATER;
use super::{random_token, Event, Level, Server};

impl Server {
    /// Applies a new configuration to the running server, as nats-server's
    /// reload does: every changed option must be one that can change live,
    /// else nothing is applied and the error says which (`config reload not
    /// supported for <field>: old=..., new=...`). Then each client is checked
    /// against the new users and accounts: one whose user is gone or now
    /// belongs to another account is closed (without an error, as
    /// nats-server); one that no longer authenticates gets `Authorization
    /// Violation` and is closed; the others get their new permissions and
    /// limits, their `allow_responses` tracking starts afresh, and each
    /// subscription no longer allowed is removed with `Permissions Violation
    /// for Subscription to "<subject>" (sid "<sid>")`. Subscriptions,
    /// counters and awaited service answers carry over into the accounts of
    /// the same name. If `max_connections` was lowered, the newest clients
    /// over it are closed. `now` becomes the `config_load_time` monitoring
    /// reports.
    pub fn reload(&mut self, opts: Options, auth: Auth, now: Time) -> Result<(), String> {
        self.input_time = now;
        self.reload_config(opts, auth)?;
        self.config_loaded = now;
        Ok(())
    }

    fn reload_config(&mut self, opts: Options, auth: Auth) -> Result<(), String> {
        // The accounts are rebuilt below: no subscription may be half removed.
        self.finish_teardowns();
        let old_system = self.system_account.clone();
        let new_system = auth.accounts.system_account().map(str::to_string);
        let port = |p: Option<u16>| p.map_or("-1".to_string(), |p| p.to_string());
        // As nats-server prints a string option: the value, nothing for none.
        let text = |value: Option<&str>| value.unwrap_or_default().to_string();
        let unchanged = [
            ("host", self.opts.host.clone(), opts.host.clone()),
            ("port", port(self.opts.port), port(opts.port)),
            (
                "max_subscriptions",
                self.opts.max_subscriptions.to_string(),
                opts.max_subscriptions.to_string(),
            ),
            (
                "server_name",
                text(self.opts.server_name.as_deref()),
                text(opts.server_name.as_deref()),
            ),
            (
                "no_auth_user",
                text(self.users.no_auth_user()),
                text(auth.users.no_auth_user()),
            ),
            (
                "system_account",
                text(old_system.as_deref()),
                text(new_system.as_deref()),
            ),
            (
                "http_host",
                self.opts.http_host().to_string(),
                opts.http_host().to_string(),
            ),
            (
                "http_port",
                config_http_port(self.opts.http_port),
                config_http_port(opts.http_port),
            ),
            (
                "https_port",
                config_http_port(self.opts.https_port),
                config_http_port(opts.https_port),
            ),
            (
                "max_sub_tokens",
                self.opts.max_sub_tokens.to_string(),
                opts.max_sub_tokens.to_string(),
            ),
            (
                "no_header_support",
                self.opts.no_header_support.to_string(),
                opts.no_header_support.to_string(),
            ),
            (
                "lame_duck_duration",
                format_duration(self.opts.lame_duck_duration),
                format_duration(opts.lame_duck_duration),
            ),
            (
                "lame_duck_grace_period",
                format_duration(self.opts.lame_duck_grace_period),
                format_duration(opts.lame_duck_grace_period),
            ),
            (
                "http_base_path",
                self.opts.http_base_path.clone(),
                opts.http_base_path.clone(),
            ),
        ];
        for (field, old, new) in unchanged {
            if old != new {
                let error =
                    format!("config reload not supported for {field}: old={old}, new={new}");
                self.log(
                    Level::Error,
                    &format!("Failed to reload server configuration: {error}"),
                );
                return Err(error);
            }
        }
        let Auth { users, accounts } = auth;
        let changes = ReloadChanges::between(&self.opts, &self.users, &opts, &users);
        // The `Reloaded: <option>` lines go before what the reload then does
        // to clients, as nats-server orders them; they are put in place once
        // the number of clients closed for `max_connections` is known.
        let mark = self.events.len();
        let mut new_accounts = accounts.instantiate(
            !opts.disable_sublist_cache,
            opts.jetstream.is_some(),
            || random_token(&mut self.rng),
        );
        let new_index: HashMap<String, usize> = new_accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), i))
            .collect();
        if opts.tls != self.opts.tls {
            // New connections use the new files; connected ones keep theirs.
            self.tls = opts.tls.as_ref().map(crate::tls::TlsAcceptor::new);
        }
        self.opts = opts;
        self.users = users;
        self.compiled_perms.clear();
        self.stall_high_water = (self.opts.max_pending / 4 * 3).min(STALL_HIGH_WATER) as usize;

        // Who stays, and where.
        for index in 0..self.slots.len() {
            let Some(client) = self.slots[index].client.as_ref() else {
                continue;
            };
            if client.closing || !client.authenticated || !client.counted {
                continue;
            }
            let old_account = self.accounts[client.account].name.clone();
            let name = client.user.clone().unwrap_or_default();
            let identity = self
                .users
                .reauthenticate(
                    &client.opts,
                    client.nonce.as_deref(),
                    client.cert_identity.as_deref(),
                    client.proven_hash.as_deref(),
                )
                .map(|u| (u.account.to_string(), u.index));
            if let Some((_, user)) = identity {
                // Proven now, against whichever hash the user has.
                let hash = self.users.bcrypt_hash(user).map(Into::into);
                self.client_mut(index).proven_hash = hash;
            }
            match identity.map(|(account, _)| account) {
                Some(account) if account == old_account && new_index.contains_key(&account) => {}
                Some(_) => self.shut_client(index, CloseReason::ClientClosed, true),
                None if !name.is_empty() && !self.users.has_user(&name) => {
                    self.shut_client(index, CloseReason::ClientClosed, true)
                }
                None => self.auth_violation(index),
            }
        }

        // Move subscriptions, counters and awaited answers into the new accounts.
        let old_accounts = std::mem::take(&mut self.accounts);
        let remap: Vec<Option<usize>> = old_accounts
            .iter()
            .map(|a| new_index.get(&a.name).copied())
            .collect();
        for (old, account) in old_accounts.into_iter().enumerate() {
            let Some(new) = remap[old] else { continue };
            let target = &mut new_accounts[new];
            target.stats = AccountStats {
                connections: 0,
                ..account.stats
            };
            // Streams stay (under the new limits) while the account keeps JetStream.
            if let (Some(old_js), Some(new_js)) = (account.jetstream, target.jetstream.as_mut()) {
                new_js.keep_streams_of(old_js);
            }
            for (token, mut pending) in account.responses {
                if let Some(requester) = remap[pending.account] {
                    pending.account = requester;
                    target.responses.insert(token, pending);
                }
            }
        }
        // Every subscription left belongs to a client that stays, in an
        // account that exists under the same name.
        for (key, sub) in self.subs.iter_mut().enumerate() {
            if let Some(sub) = sub {
                let new = remap[sub.account as usize].expect("the client's account stays");
                sub.account = new as u32;
                let queue = sub.queue.as_deref();
                new_accounts[new]
                    .sublist
                    .insert(&sub.subject, queue, SubKey(key as u32));
            }
        }
        self.service_imports = new_accounts.iter().map(|a| a.services_in.len()).sum();
        self.accounts = new_accounts;
        if let Some(reader) = self.block_reader.clone() {
            // Accounts that gained JetStream read their blocks back too.
            self.set_block_reader(reader);
        }
        self.account_index = new_index;
        self.system_account = new_system;
        for client in self.slots.iter_mut().filter_map(|s| s.client.as_mut()) {
            client.last_publish.forget_matches();
            match remap[client.account] {
                Some(new) => client.account = new,
                None => (client.account, client.counted) = (0, false),
            }
        }

        // The survivors: new permissions and limits.
        for index in 0..self.slots.len() {
            let live = self.slots[index]
                .client
                .as_ref()
                .is_some_and(|c| !c.closing && c.authenticated && c.counted);
            if !live {
                continue;
            }
            // Counted again, within the account's (possibly new) limits.
            let client = self.client_mut(index);
            client.counted = false;
            let account = client.account;
            if !self.join_account(index, account) {
                continue;
            }
            let user_index = {
                let client = self.client_ref(index);
                self.users
                    .reauthenticate(
                        &client.opts,
                        client.nonce.as_deref(),
                        client.cert_identity.as_deref(),
                        client.proven_hash.as_deref(),
                    )
                    .map(|u| u.index)
            };
            let Some(user_index) = user_index else {
                continue;
            };
            self.install_permissions(index, user_index);
            self.recheck_subscriptions(index);
        }

        // A lowered max_connections closes the newest clients over it.
        let mut closed_over_max = 0;
        let max = self.opts.max_connections as usize;
        if self.open_clients > max {
            let mut open: Vec<(u64, usize)> = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.client.as_ref().filter(|c| !c.closing).map(|c| (c.cid, i)))
                .collect();
            open.sort_unstable_by(|a, b| b.cmp(a));
            let over = self.open_clients - max;
            for (_, index) in open.into_iter().take(over) {
                self.log_client(index, Level::Error, "maximum connections exceeded");
                self.close_with_error(index, ClientError::MaxConnectionsExceeded);
            }
            closed_over_max = over;
        }
        for (i, line) in changes.lines(closed_over_max).into_iter().enumerate() {
            self.events.insert(mark + i, Event::Log(Level::Info, line));
        }
        self.log(Level::Info, "Reloaded server configuration");
        Ok(())
    }

    /// Checks the client's subscriptions against its current permissions
    /// (they changed: another login on the same connection): one no longer
    /// allowed is removed with `-ERR 'Permissions Violation for Subscription
    /// to "<subject>" (sid "<sid>")'`, as nats-server reports subscriptions a
    /// reload takes away; the others are re-marked for delivery filtering.
    pub(super) fn recheck_subscriptions(&mut self, index: usize) {
        let client = self.client_ref(index);
        let perms = client.perms.clone();
        let keys: Vec<SubKey> = client.subs.values().copied().collect();
        for key in keys {
            let sub = self.subs[key.0 as usize]
                .as_mut()
                .expect("client subs are live");
            let decision = perms.as_ref().map_or(SubscribeDecision::Allowed, |p| {
                p.can_subscribe(&sub.subject, sub.queue.as_deref())
            });
            sub.filtered = decision == SubscribeDecision::AllowedFiltered;
            if decision == SubscribeDecision::Denied {
                let text = removed_subscription_violation(&sub.subject, &sub.sid);
                let mut line = String::from("Removed sub ");
                go_quote(&sub.subject, &mut line);
                line.push_str(" (sid ");
                go_quote(&sub.sid, &mut line);
                line.push_str(") for ");
                self.remove_sub(key);
                self.send_error_text(index, &text);
                // As nats-server: a server line (no client prefix), so an
                // operator sees what a reload took away.
                line.push_str(&self.auth_user_label(index));
                line.push_str(" - not authorized");
                self.log(Level::Info, &line);
            }
        }
    }
}

/// A monitoring port as the configuration writes it (0: none, -1: any).
fn config_http_port(port: Option<u16>) -> String {
    match port {
        None => "0".to_string(),
        Some(0) => "-1".to_string(),
        Some(p) => p.to_string(),
    }
}

/// What a reload changes that nats-server reports with a `Reloaded: <option>`
/// line, each as nats-server prints its new value.
struct ReloadChanges {
    trace: Option<bool>,
    debug: Option<bool>,
    max_connections: Option<u32>,
    nkey_users: bool,
    username: bool,
    password: bool,
    token: bool,
    ping_interval: Option<Duration>,
    ping_max: Option<u32>,
    auth_timeout: Option<Duration>,
    max_control_line: Option<u32>,
    max_payload: Option<u32>,
    write_deadline: Option<Duration>,
    max_traced_msg_len: Option<usize>,
    connect_error_reports: Option<u64>,
    reconnect_error_reports: Option<u64>,
}

impl ReloadChanges {
    fn between(old: &Options, old_users: &Users, new: &Options, new_users: &Users) -> Self {
        fn changed<T: PartialEq + Copy>(old: T, new: T) -> Option<T> {
            (old != new).then_some(new)
        }
        let (old_user, old_pass, old_token) = old_users.single_credentials();
        let (new_user, new_pass, new_token) = new_users.single_credentials();
        ReloadChanges {
            trace: changed(old.trace, new.trace),
            debug: changed(old.debug, new.debug),
            max_connections: changed(old.max_connections, new.max_connections),
            nkey_users: old_users.nkey_users_differ(new_users),
            username: old_user != new_user,
            password: old_pass != new_pass,
            token: old_token != new_token,
            ping_interval: changed(old.ping_interval, new.ping_interval),
            ping_max: changed(old.ping_max, new.ping_max),
            auth_timeout: changed(old_users.timeout(), new_users.timeout()),
            max_control_line: changed(old.max_control_line, new.max_control_line),
            max_payload: changed(old.max_payload, new.max_payload),
            write_deadline: changed(old.write_deadline, new.write_deadline),
            max_traced_msg_len: changed(old.max_traced_msg_len, new.max_traced_msg_len),
            connect_error_reports: changed(old.connect_error_reports, new.connect_error_reports),
            reconnect_error_reports: changed(
                old.reconnect_error_reports,
                new.reconnect_error_reports,
            ),
        }
    }

    /// nats-server's lines, in the order of its options (the users and the
    /// accounts always count as changed there, so those two lines are
    /// always logged); `closed` clients were closed for `max_connections`.
    fn lines(&self, closed: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let mut add = |text: String| lines.push(format!("Reloaded: {text}"));
        if let Some(v) = self.trace {
            add(format!("trace = {v}"));
        }
        if let Some(v) = self.debug {
            add(format!("debug = {v}"));
        }
        if let Some(v) = self.max_connections {
            add(format!("max_connections = {v}"));
        }
        if self.nkey_users {
            add("authorization nkey users".to_string());
        }
        add("authorization users".to_string());
        add("accounts".to_string());
        if self.username {
            add("authorization username".to_string());
        }
        if self.password {
            add("authorization password".to_string());
        }
        if self.token {
            add("authorization token".to_string());
        }
        if let Some(v) = self.ping_interval {
            add(format!("ping_interval = {}", format_duration(v)));
        }
        if let Some(v) = self.ping_max {
            add(format!("ping_max = {v}"));
        }
        if let Some(v) = self.auth_timeout {
            // Go's %v of a float64 number of seconds: `2`, `1.5`.
            add(format!("authorization timeout = {}", v.as_secs_f64()));
        }
        if let Some(v) = self.max_control_line {
            add(format!("max_control_line = {v}"));
        }
        if let Some(v) = self.max_payload {
            add(format!("max_payload = {v}"));
        }
        if let Some(v) = self.write_deadline {
            add(format!("write_deadline = {}", format_duration(v)));
        }
        if let Some(v) = self.max_traced_msg_len {
            add(format!("max_traced_msg_len = {v}"));
        }
        if let Some(v) = self.connect_error_reports {
            add(format!("connect_error_reports = {v}"));
        }
        if let Some(v) = self.reconnect_error_reports {
            add(format!("reconnect_error_reports = {v}"));
        }
        if closed > 0 {
            // Before the max_connections line, as nats-server logs it.
            let at = lines
                .iter()
                .position(|l| l.starts_with("Reloaded: max_connections"))
                .unwrap_or(0);
            let text = format!("Closed {closed} connections to fall within max_connections");
            lines.insert(at, text);
        }
        lines
    }
}

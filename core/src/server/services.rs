//! Routes between accounts: stream exports, service imports and the answers owed
//! through them (with their pruning), and `allow_responses` reply tracking.

use std::cmp::Reverse;

use crate::account::{PendingResponse, ResponseType, SERVICE_REPLY_PREFIX};
use crate::proto::Publish;
use crate::time::Time;

use super::timers::{Timer, SERVER_TIMER};
use super::{random_token, ClientId, Server};

impl Server {
    /// Delivers a message published in `acc` to the accounts importing it as
    /// a stream, each on its own subject for it: once per matching import, so
    /// two overlapping imports deliver twice, as in nats-server.
    pub(super) fn export_stream(
        &mut self,
        acc: usize,
        publisher: usize,
        publish: &Publish<'_>,
        now: Time,
    ) -> bool {
        let routes = self.accounts[acc].streams_out.matching(publish.subject);
        if routes.plain.is_empty() {
            return false;
        }
        let mut buf = std::mem::take(&mut self.route_buf);
        let mut spans = std::mem::take(&mut self.route_spans);
        for &key in &routes.plain {
            let route = self.accounts[acc].streams_out.get(key);
            let start = buf.len();
            route.map_into(publish.subject, &mut buf);
            spans.push((route.importer, start, buf.len()));
        }
        let mut delivered = false;
        for &(importer, start, end) in &spans {
            let imported = Publish {
                subject: &buf[start..end],
                ..*publish
            };
            let matches = self.accounts[importer].sublist.matches(imported.subject);
            delivered |= self.deliver_all(publisher, &matches, &imported, now);
        }
        buf.clear();
        spans.clear();
        self.route_buf = buf;
        self.route_spans = spans;
        delivered
    }

    /// Hands a request published in `acc` to the service it imports on that
    /// subject (the first such import), with a reply subject that routes the
    /// service's answer back; and on, if that account imports the service in
    /// turn. Returns whether an import took the request.
    pub(super) fn import_service(
        &mut self,
        acc: usize,
        publisher: usize,
        publish: &Publish<'_>,
        now: Time,
    ) -> bool {
        if self.accounts[acc]
            .services_in
            .matching(publish.subject)
            .plain
            .is_empty()
        {
            return false;
        }
        let mut at = acc;
        let mut subject: Vec<u8> = publish.subject.to_vec();
        let mut reply: Option<Vec<u8>> = publish.reply.map(<[u8]>::to_vec);
        // A chain longer than the number of service imports repeats one: a
        // cycle. Those are refused at load; the bound keeps any the load-time
        // check lets through finite.
        for _ in 0..self.service_imports {
            let routes = self.accounts[at].services_in.matching(&subject);
            let Some(&key) = routes.plain.first() else {
                break;
            };
            let route = self.accounts[at].services_in.get(key);
            let (exporter, response, threshold) = (route.exporter, route.response, route.threshold);
            let mut remote = Vec::with_capacity(route.remote.len());
            route.map_into(&subject, &mut remote);
            let service_reply = reply.take().map(|reply| {
                let expires = now + threshold;
                let pending = PendingResponse {
                    account: at,
                    reply: reply.into(),
                    response,
                    threshold,
                    expires,
                };
                let token = self.new_service_reply(at, exporter, pending);
                self.schedule_response_prune(expires);
                token
            });
            let request = Publish {
                subject: &remote,
                reply: service_reply.as_deref(),
                ..*publish
            };
            let matches = self.accounts[exporter].sublist.matches(&remote);
            self.deliver_all(publisher, &matches, &request, now);
            (at, subject, reply) = (exporter, remote, service_reply);
        }
        true
    }

    /// Registers an answer owed through `exporter` to `pending.account`, under
    /// a fresh `_R_.<requester's prefix>.<random>` subject, which it returns.
    fn new_service_reply(
        &mut self,
        requester: usize,
        exporter: usize,
        pending: PendingResponse,
    ) -> Vec<u8> {
        let prefix = self.accounts[requester].reply_prefix;
        let mut token = Vec::with_capacity(SERVICE_REPLY_PREFIX.len() + 13);
        loop {
            token.clear();
            token.extend_from_slice(SERVICE_REPLY_PREFIX);
            token.extend_from_slice(&prefix);
            token.push(b'.');
            token.extend_from_slice(&random_token(&mut self.rng));
            if !self.accounts[exporter].responses.contains_key(&token[..]) {
                break;
            }
        }
        self.accounts[exporter]
            .responses
            .insert(token.as_slice().into(), pending);
        token
    }

    /// Routes a service's answer (published in `acc` on an `_R_` subject) to
    /// the requester's own reply subject in the requester's account, back
    /// along every service import the request went through.
    pub(super) fn answer_service(
        &mut self,
        acc: usize,
        publisher: usize,
        publish: &Publish<'_>,
        now: Time,
    ) -> bool {
        let mut delivered = false;
        let mut at = acc;
        let mut subject: Box<[u8]> = publish.subject.into();
        // Answers retrace the request's hops.
        for _ in 0..self.service_imports {
            let responses = &mut self.accounts[at].responses;
            let Some(pending) = responses.get_mut(&subject[..]) else {
                break;
            };
            // An empty message ends a streamed or chunked answer.
            let last = pending.response == ResponseType::Singleton || publish.payload.is_empty();
            let target = pending.account;
            let reply = if last {
                responses.remove(&subject[..]).expect("present").reply
            } else {
                pending.expires = now + pending.threshold;
                let (reply, expires) = (pending.reply.clone(), pending.expires);
                self.schedule_response_prune(expires);
                reply
            };
            let answer = Publish {
                subject: &reply,
                ..*publish
            };
            let matches = self.accounts[target].sublist.matches(&reply);
            delivered |= self.deliver_all(publisher, &matches, &answer, now);
            (at, subject) = (target, reply);
        }
        delivered
    }

    fn schedule_response_prune(&mut self, due: Time) {
        if self.response_prune_due.is_none_or(|d| due < d) {
            self.response_prune_due = Some(due);
            self.timers
                .push(Reverse((due, SERVER_TIMER, Timer::ResponsePrune as u8)));
        }
    }

    /// Forgets service answers no longer awaited, and schedules the next pruning.
    pub(super) fn prune_responses(&mut self, due: Time, now: Time) {
        if self.response_prune_due != Some(due) {
            return;
        }
        self.response_prune_due = None;
        let mut next: Option<Time> = None;
        for account in &mut self.accounts {
            account.responses.retain(|_, p| p.expires > now);
            for p in account.responses.values() {
                next = Some(next.map_or(p.expires, |n| n.min(p.expires)));
            }
        }
        if let Some(next) = next {
            self.schedule_response_prune(next);
        }
    }

    /// Service answers awaited by requesters in other accounts (for monitoring and tests).
    pub fn pending_responses(&self) -> usize {
        self.accounts.iter().map(|a| a.responses.len()).sum()
    }

    // ----- allow_responses ----------------------------------------------------

    /// Expires `allow_responses` entries on the engine's clock, and schedules the
    /// next pruning while entries remain.
    pub(super) fn prune_replies(&mut self, index: usize, due: Time, now: Time) {
        let client = self.slots[index].client.as_mut().expect("live client");
        if client.prune_due != Some(due) {
            return;
        }
        client.prune_due = None;
        let Some(tracker) = client.replies.as_mut() else {
            return;
        };
        tracker.prune(now);
        if let Some(next) = tracker.next_expiry() {
            client.prune_due = Some(next);
            self.timers
                .push(Reverse((next, client.id.0, Timer::ReplyPrune as u8)));
        }
    }

    /// Replies a client may still send under `allow_responses` (for monitoring).
    pub fn tracked_replies(&self, id: ClientId) -> usize {
        self.live_index(id)
            .and_then(|i| self.client_ref(i).replies.as_ref().map(|r| r.len()))
            .unwrap_or(0)
    }

    /// Whether this client may publish to `subject`: its allow/deny lists
    /// (cached), then a reply owed under `allow_responses`.
    pub(super) fn publish_allowed(&mut self, index: usize, subject: &[u8], now: Time) -> bool {
        let client = self.slots[index].client.as_mut().expect("live client");
        let Some(perms) = client.perms.as_ref().filter(|p| p.restricts_publish()) else {
            return true;
        };
        let allowed = match client.last_publish.allowed() {
            Some(allowed) => allowed,
            None => {
                let allowed = client.publish_cache.decide(subject, perms);
                client.last_publish.set_allowed(allowed);
                allowed
            }
        };
        // Replies allowed by tracking are not cached: each uses up an allowance.
        allowed
            || client
                .replies
                .as_mut()
                .is_some_and(|r| r.allow_reply(subject, now))
    }
}

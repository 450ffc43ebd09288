//! The engine's side of JetStream: `$JS.API` requests answered in the
//! requester's account, and published messages stored by the stream that
//! covers their subject, each answered on its reply subject.

use crate::jetstream::api::not_enabled_answer;
use crate::proto::encode::decimal;
use crate::proto::Publish;
use crate::time::Time;

use super::Server;

/// Publishes on these subjects are JetStream API requests.
const API_PREFIX: &[u8] = b"$JS.API.";

/// A publisher index no client has: the server's own messages.
const NO_PUBLISHER: usize = usize::MAX;

impl Server {
    /// The wall-clock time of `now`, in Unix nanoseconds (stored messages
    /// and streams carry it).
    fn unix_time(&self, now: Time) -> u64 {
        self.wall_origin.unwrap_or(0).saturating_add(now.as_nanos())
    }

    /// JetStream's part of a client's publish (after its permission
    /// checks); returns whether JetStream took it, which counts as interest
    /// (no no-responders status).
    pub(super) fn jetstream_publish(
        &mut self,
        index: usize,
        publish: &Publish<'_>,
        now: Time,
    ) -> bool {
        if self.opts.jetstream.is_none() {
            return false;
        }
        let acc = self.client_ref(index).account;
        let (hdr, data) = publish.payload.split_at(publish.header_len);
        let unix = self.unix_time(now);
        if let Some(api) = publish.subject.strip_prefix(API_PREFIX) {
            let api = String::from_utf8_lossy(api);
            let answer = match self.accounts[acc].jetstream.as_mut() {
                Some(js) => js.request(&api, data, unix, 0),
                None => not_enabled_answer(&api),
            };
            if let (Some(answer), Some(reply)) = (answer, publish.reply) {
                self.publish_internal(acc, reply, answer.as_bytes(), now);
            }
            return true;
        }
        let Some(js) = self.accounts[acc].jetstream.as_mut() else {
            return false;
        };
        let Some((_, ack)) = js.capture(publish.subject, hdr, data, unix) else {
            return false;
        };
        if let (Some(ack), Some(reply)) = (ack, publish.reply) {
            self.publish_internal(acc, reply, ack.as_bytes(), now);
        }
        true
    }

    /// A message of the server's own on `subject` in account `acc`.
    fn publish_internal(&mut self, acc: usize, subject: &[u8], payload: &[u8], now: Time) {
        let mut size = [0u8; 20];
        let publish = Publish {
            subject,
            reply: None,
            header_size_token: None,
            size_token: decimal(payload.len(), &mut size),
            header_len: 0,
            payload,
        };
        let matches = self.accounts[acc].sublist.matches(subject);
        self.deliver_all(NO_PUBLISHER, &matches, &publish, now);
    }
}

//! A publisher's last subject and what it resolved to: its permission decision and its match.
//!
//! Publishers mostly repeat one subject, so each connection remembers the last
//! one. A repeat is found with one short comparison and then skips both the
//! permission lookup and the sublist's shared cache (nats-server keeps a
//! per-client result cache for the same reason).

use std::sync::Arc;

use crate::subject;
use crate::sublist::Matches;

/// What the last published subject resolved to. Each part is valid until the
/// thing it depends on changes: the decision until the connection's
/// permissions do ([`forget_permission`](Self::forget_permission)), the match
/// while the sublist it came from has the same generation (a sublist that is
/// rebuilt starts its generations again: [`forget_matches`](Self::forget_matches)).
#[derive(Debug, Default)]
pub struct PublishMemo {
    subject: Vec<u8>,
    allowed: Option<bool>,
    /// `(sublist owner, its generation, the match)`.
    matched: Option<(usize, u64, Arc<Matches>)>,
}

impl PublishMemo {
    /// Makes `subject` the one remembered for; true if it already was, in
    /// which case what was remembered stays. The subject's buffer is reused,
    /// so a steady publisher allocates nothing.
    pub fn start(&mut self, subject: &[u8]) -> bool {
        if subject::same(&self.subject, subject) {
            return true;
        }
        self.subject.clear();
        self.subject.extend_from_slice(subject);
        self.allowed = None;
        self.matched = None;
        false
    }

    /// The publish permission decided for the current subject.
    pub fn allowed(&self) -> Option<bool> {
        self.allowed
    }

    /// Remembers the publish permission of the current subject.
    pub fn set_allowed(&mut self, allowed: bool) {
        self.allowed = Some(allowed);
    }

    /// The current subject's match in sublist `owner`, moved out (no
    /// reference-count traffic) if it is from that sublist at `generation`.
    pub fn take_matches(&mut self, owner: usize, generation: u64) -> Option<Arc<Matches>> {
        match &self.matched {
            Some((o, g, _)) if *o == owner && *g == generation => {
                self.matched.take().map(|(_, _, m)| m)
            }
            _ => None,
        }
    }

    /// Remembers the current subject's match in sublist `owner` at `generation`.
    pub fn keep_matches(&mut self, owner: usize, generation: u64, matches: Arc<Matches>) {
        self.matched = Some((owner, generation, matches));
    }

    /// The connection's permissions changed.
    pub fn forget_permission(&mut self) {
        self.allowed = None;
    }

    /// The sublists were rebuilt (a reload).
    pub fn forget_matches(&mut self) {
        self.matched = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_subject_forgets_both_parts_and_a_repeat_keeps_them() {
        let mut memo = PublishMemo::default();
        assert!(!memo.start(b"a.b"));
        memo.set_allowed(true);
        memo.keep_matches(1, 7, Arc::new(Matches::default()));
        assert!(memo.start(b"a.b"));
        assert_eq!(memo.allowed(), Some(true));
        assert!(memo.take_matches(1, 8).is_none(), "another generation");
        assert!(memo.take_matches(2, 7).is_none(), "another sublist");
        let matches = memo
            .take_matches(1, 7)
            .expect("same sublist and generation");
        assert!(memo.take_matches(1, 7).is_none(), "moved out");
        memo.keep_matches(1, 7, matches);
        assert!(!memo.start(b"a.c"));
        assert_eq!(memo.allowed(), None);
        assert!(memo.take_matches(1, 7).is_none());
    }

    #[test]
    fn permissions_and_sublists_are_forgotten_separately() {
        let mut memo = PublishMemo::default();
        memo.start(b"x");
        memo.set_allowed(false);
        memo.keep_matches(0, 1, Arc::new(Matches::default()));
        memo.forget_permission();
        assert_eq!(memo.allowed(), None);
        assert!(memo.take_matches(0, 1).is_some());
        memo.set_allowed(false);
        memo.forget_matches();
        assert_eq!(memo.allowed(), Some(false));
        assert!(memo.take_matches(0, 1).is_none());
    }
}

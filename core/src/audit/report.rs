//! The audit's answers as text for people and as JSON for pipelines.

use serde_json::{json, Value};

use super::{Explanation, Operation, Reason, Verdict, Warning, WhoAnswer};
use crate::config::Pos;

fn position(at: &Option<Pos>) -> Value {
    match at {
        Some(p) => json!({"file": &*p.file, "line": p.line, "column": p.column}),
        None => Value::Null,
    }
}

fn reason_json(r: &Reason) -> Value {
    json!({"text": r.text, "at": position(&r.at)})
}

fn reason_line(out: &mut String, r: &Reason) {
    out.push_str("  - ");
    out.push_str(&r.text);
    if let Some(at) = &r.at {
        out.push_str(&format!(" ({at})"));
    }
    out.push('\n');
}

impl Explanation {
    /// The explanation as lines of text: the verdict first, then why.
    pub fn to_text(&self) -> String {
        let verb = match (self.operation, self.verdict) {
            (_, Verdict::Denied) => "may not",
            (_, Verdict::RepliesOnly) => "may, only as a reply,",
            _ => "may",
        };
        let queue = self
            .queue
            .as_ref()
            .map_or(String::new(), |q| format!(" in queue group {q:?}"));
        let mut out = format!(
            "{}: {} (account {}) {verb} {} {} {:?}{queue}\n",
            self.verdict.word(),
            self.user,
            self.account,
            self.operation.word(),
            match self.operation {
                Operation::Publish => "to",
                Operation::Subscribe => "to",
            },
            self.subject,
        );
        for r in &self.reasons {
            reason_line(&mut out, r);
        }
        if let Some(js) = &self.jetstream {
            out.push_str(&format!("  - {js}\n"));
        }
        if !self.crossings.is_empty() {
            out.push_str("across accounts:\n");
            for r in &self.crossings {
                reason_line(&mut out, r);
            }
        }
        out
    }

    /// The explanation as a JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "user": self.user,
            "account": self.account,
            "operation": self.operation.word(),
            "subject": self.subject,
            "queue": self.queue,
            "decision": self.verdict.word(),
            "reasons": self.reasons.iter().map(reason_json).collect::<Vec<_>>(),
            "crossings": self.crossings.iter().map(reason_json).collect::<Vec<_>>(),
            "jetstream": self.jetstream,
        })
    }
}

impl WhoAnswer {
    /// One line per user who can, with the rule and any import under it.
    pub fn to_text(&self) -> String {
        let verb = match self.operation {
            Operation::Publish => "may publish to",
            Operation::Subscribe => "may receive",
        };
        let place = self
            .account
            .as_ref()
            .map_or(" in any account".to_string(), |a| {
                format!(" in account {a}")
            });
        // A user reached both directly and through an import counts once.
        let mut users: Vec<(&str, &str)> = self
            .reaches
            .iter()
            .map(|r| (r.user.as_str(), r.account.as_str()))
            .collect();
        users.sort_unstable();
        users.dedup();
        let mut out = format!("{} user(s) {verb} {:?}{place}\n", users.len(), self.subject);
        if let Some(js) = &self.jetstream {
            out.push_str(&format!("({js})\n"));
        }
        for reach in &self.reaches {
            let on = if reach.subject == self.subject {
                String::new()
            } else {
                format!(" on {:?}", reach.subject)
            };
            out.push_str(&format!(
                "{} (account {}){on}: {}\n",
                reach.user,
                reach.account,
                reach.verdict.word()
            ));
            for r in &reach.reasons {
                reason_line(&mut out, r);
            }
        }
        out
    }

    /// The answer as a JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "operation": self.operation.word(),
            "subject": self.subject,
            "account": self.account,
            "jetstream": self.jetstream,
            "users": self.reaches.iter().map(|r| json!({
                "user": r.user,
                "account": r.account,
                "subject": r.subject,
                "decision": r.verdict.word(),
                "reasons": r.reasons.iter().map(reason_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

impl Warning {
    /// `file:line:col: warning: message`, then the fix on its own line.
    pub fn to_text(&self) -> String {
        let at = self.at.as_ref().map_or(String::new(), |p| format!("{p}: "));
        format!("{at}warning: {}\n  fix: {}\n", self.message, self.fix)
    }

    /// The warning as a JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.name(),
            "message": self.message,
            "fix": self.fix,
            "at": position(&self.at),
        })
    }
}

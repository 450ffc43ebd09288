//! Writing JSON objects field by field, in the order nats-server writes
//! them (a map would sort the keys), with Go's escaping.

use super::config::go_json;

/// A JSON object under construction.
pub struct Obj(String);

impl Default for Obj {
    fn default() -> Self {
        Obj::new()
    }
}

impl Obj {
    pub fn new() -> Obj {
        Obj(String::from("{"))
    }

    fn key(&mut self, key: &str) -> &mut String {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
        &mut self.0
    }

    pub fn str(mut self, key: &str, value: &str) -> Obj {
        let text = serde_json::to_string(value).expect("a string serializes");
        self.key(key).push_str(&text);
        self
    }

    pub fn num(mut self, key: &str, value: impl Into<i128>) -> Obj {
        let n: i128 = value.into();
        self.key(key).push_str(&n.to_string());
        self
    }

    pub fn bool(mut self, key: &str, value: bool) -> Obj {
        self.key(key).push_str(if value { "true" } else { "false" });
        self
    }

    /// A value that is JSON already.
    pub fn raw(mut self, key: &str, json: &str) -> Obj {
        self.key(key).push_str(json);
        self
    }

    pub fn raw_if(self, key: &str, json: Option<&str>) -> Obj {
        match json {
            Some(json) => self.raw(key, json),
            None => self,
        }
    }

    /// The finished object, escaped as Go escapes.
    pub fn done(mut self) -> String {
        self.0.push('}');
        go_json(&self.0)
    }
}

/// A JSON array of already-JSON items.
pub fn array<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_stay_in_order_and_strings_are_escaped_as_go_does() {
        let json = Obj::new()
            .str("type", "x")
            .num("total", 3u64)
            .num("max", -1i64)
            .bool("ok", true)
            .raw("list", &array(["1".to_string(), "2".to_string()]))
            .raw_if("skipped", None)
            .str("subject", "a.>")
            .done();
        assert_eq!(
            json,
            r#"{"type":"x","total":3,"max":-1,"ok":true,"list":[1,2],"subject":"a.\u003e"}"#
        );
        assert_eq!(Obj::new().done(), "{}");
    }
}

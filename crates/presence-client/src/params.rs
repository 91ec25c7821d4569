//! Request parameters as the API wants them: strings as they are, every
//! other value as JSON text inside the field (`ping_only=true`,
//! `last_update_id=-1`), as Zulip's clients send them.

use serde::Serialize;

/// An ordered list of parameters for a query string or a form body.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(&'static str, String)>);

impl Params {
    /// A string parameter, sent as is.
    pub(crate) fn text(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.0.push((name, value.into()));
        self
    }

    /// A non-string parameter, sent as JSON text.
    pub(crate) fn json(mut self, name: &'static str, value: impl Serialize) -> Self {
        let text = serde_json::to_string(&value).expect("plain values always serialize");
        self.0.push((name, text));
        self
    }

    /// A string parameter, if present.
    pub(crate) fn text_opt(self, name: &'static str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.text(name, value),
            None => self,
        }
    }

    /// A non-string parameter, if present.
    pub(crate) fn json_opt<T: Serialize>(self, name: &'static str, value: Option<T>) -> Self {
        match value {
            Some(value) => self.json(name, value),
            None => self,
        }
    }

    /// The pairs, for reqwest's `query` and `form`.
    pub(crate) fn pairs(&self) -> &[(&'static str, String)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_strings_are_json() {
        let p = Params::default()
            .text("status", "active")
            .json("ping_only", true)
            .json("last_update_id", -1i64)
            .json_opt::<i64>("history_limit_days", None)
            .text_opt("client", Some("bot"));
        let pairs: Vec<(&str, &str)> = p.pairs().iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("status", "active"),
                ("ping_only", "true"),
                ("last_update_id", "-1"),
                ("client", "bot")
            ]
        );
    }
}

//! What the two answer checks share: a JSON document read from beside the
//! harness, validators compiled once per schema and kept, and a validation
//! result said one problem per line. [`crate::contract`] holds answers to
//! this server's spec, [`crate::zulip`] to Zulip's shapes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Validators compiled so far, by a key the caller chooses.
#[derive(Default)]
pub struct Validators(Mutex<HashMap<String, Arc<jsonschema::Validator>>>);

impl Validators {
    /// The validator kept under `key`, compiled by `compile` the first time.
    pub fn get(
        &self,
        key: &str,
        compile: impl FnOnce() -> jsonschema::Validator,
    ) -> Arc<jsonschema::Validator> {
        // A failed test must not poison the cache for the others.
        let mut validators = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        validators
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(compile()))
            .clone()
    }
}

/// The JSON document at `relative` (see [`crate::source_path`]), which a
/// test cannot go on without.
pub fn read_json(relative: &str, what: &str) -> Value {
    let path = crate::source_path(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what} is not JSON: {e}"))
}

/// What `validator` finds wrong with `value`, one line each.
pub fn problems(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The first of `templates` (paths with `{name}` segments) that `path`
/// fits, literal templates before those with more parameters, so that
/// `/users/me/presence` is never taken for `/users/{id}/presence`.
pub fn find_template<'a>(
    templates: impl IntoIterator<Item = &'a str>,
    path: &str,
) -> Option<&'a str> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut templates: Vec<&str> = templates.into_iter().collect();
    templates.sort_by_key(|t| (t.matches('{').count(), *t));
    templates.into_iter().find(|template| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
    })
}

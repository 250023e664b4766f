//! Field capture shared by the file layers: span fields are kept as JSON values in the span's
//! extensions (updated by `Span::record`, e.g. the serial once identification read it), event
//! fields are collected per event.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};

/// A span's fields, stored in its registry extensions.
#[derive(Debug, Default, Clone)]
pub(crate) struct SpanFields(pub(crate) Map<String, Value>);

/// Collects fields into a JSON map; `message` is kept apart by the caller.
pub(crate) struct JsonVisitor<'a>(pub(crate) &'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

/// `key=value` rendering of a JSON value for human-readable lines.
pub(crate) fn plain_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

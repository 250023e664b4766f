//! The JSON file layer: one object per line with span fields merged in, so interleaved logs of
//! 32 phones can be filtered per unit (`jq 'select(.serial == "7PL…")'`). Every line carries the
//! four unit keys — `slot`, `port_path`, `serial`, `work_order` — null outside a unit.

use std::io::Write;

use serde_json::{Map, Value};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::fields::{JsonVisitor, SpanFields};
use crate::timestamp::Timestamp;

pub const UNIT_KEYS: [&str; 4] = ["slot", "port_path", "serial", "work_order"];

pub(crate) struct JsonFileLayer<W> {
    writer: W,
}

impl<W> JsonFileLayer<W> {
    pub(crate) fn new(writer: W) -> Self {
        Self { writer }
    }
}

/// Stores a new span's fields once, for every file layer to read.
pub(crate) fn capture_span_fields<S>(attrs: &Attributes<'_>, id: &Id, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if let Some(span) = ctx.span(id) {
        let mut extensions = span.extensions_mut();
        if extensions.get_mut::<SpanFields>().is_none() {
            let mut fields = SpanFields::default();
            attrs.record(&mut JsonVisitor(&mut fields.0));
            extensions.insert(fields);
        }
    }
}

pub(crate) fn record_span_fields<S>(id: &Id, values: &Record<'_>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if let Some(span) = ctx.span(id) {
        if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
            values.record(&mut JsonVisitor(&mut fields.0));
        }
    }
}

/// The JSON object for `event`: time, level, target, unit keys, span fields (root first, so
/// inner spans win), then the event's own fields.
pub(crate) fn event_object<S>(event: &Event<'_>, ctx: &Context<'_, S>) -> Map<String, Value>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let meta = event.metadata();
    let mut object = Map::new();
    object.insert("ts".into(), Value::from(Timestamp::now().to_string()));
    object.insert("level".into(), Value::from(meta.level().as_str()));
    object.insert("target".into(), Value::from(meta.target()));
    for key in UNIT_KEYS {
        object.insert(key.into(), Value::Null);
    }
    if let Some(scope) = ctx.event_scope(event) {
        let mut leaf = None;
        for span in scope.from_root() {
            if let Some(fields) = span.extensions().get::<SpanFields>() {
                object.extend(fields.0.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            leaf = Some(span.name());
        }
        if let Some(name) = leaf {
            object.insert("span".into(), Value::from(name));
        }
    }
    let mut fields = Map::new();
    event.record(&mut JsonVisitor(&mut fields));
    object.extend(fields);
    object
}

impl<S, W> Layer<S> for JsonFileLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        capture_span_fields(attrs, id, &ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        record_span_fields(id, values, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let object = event_object(event, &ctx);
        let mut line = Value::Object(object).to_string();
        line.push('\n');
        // One write per line: the non-blocking writer queues it as one message, so lines from
        // different threads never interleave.
        let _ = self
            .writer
            .make_writer_for(event.metadata())
            .write_all(line.as_bytes());
    }
}

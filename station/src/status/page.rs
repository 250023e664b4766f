//! The status page: one self-contained HTML document (no scripts, no external assets) that
//! reloads itself every few seconds; every value from the station is HTML-escaped.

use std::fmt::Write;

use super::metrics::slot_state;
use super::Snapshot;
use crate::dashboard::SlotStatus;
use crate::verdict::Verdict;

const RELOAD_SECS: u32 = 2;

pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn clock(secs: u64) -> String {
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

const STYLE: &str =
    "body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}\
h1{font-size:1.3em;margin:0 0 .3em}.sub{color:#555;margin-bottom:1em}\
.counters{display:flex;gap:1.5em;margin:1em 0;font-size:1.1em}.counters b{font-size:1.4em}\
table{border-collapse:collapse;width:100%;background:#fff}\
th,td{border:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}\
th{background:#eee}.pass{background:#e3f6e3}.fail{background:#fbe3e3}.aborted{background:#fff4d6}\
.working{background:#eef4ff}.vanished{background:#f0f0f0}.code{font-weight:bold;color:#a00}\
.banner{background:#a00;color:#fff;padding:.5em 1em;margin:1em 0;font-weight:bold}\
.bar{display:inline-block;width:8em;height:.8em;background:#ddd;vertical-align:middle}\
.bar span{display:block;height:100%;background:#4a7ee8}";

pub(super) fn render(snapshot: &Snapshot) -> String {
    let state = &snapshot.board.state;
    let counts = state.counts();
    let mut html = String::new();
    let title = match state.batch() {
        Some(b) => format!("flashgate {} · {}", b.station_id, b.work_order),
        None => "flashgate station".to_owned(),
    };
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{RELOAD_SECS}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    match state.batch() {
        Some(b) => {
            let _ = writeln!(
                html,
                "<div class=\"sub\">product {} · region {} · build {} · read-only status, \
                 reloads every {RELOAD_SECS} s · <a href=\"/metrics\">metrics</a></div>",
                escape(&b.product),
                escape(&b.region),
                escape(&b.build_id)
            );
        }
        None => html.push_str("<div class=\"sub\">waiting for the batch to start</div>\n"),
    }
    if let Some(fleet) = state.fleet() {
        let text = match &fleet.error {
            Some(error) => format!(
                "FLEET DATABASE NOT REACHED: {} attempt(s) wait in the journal ({error})",
                fleet.backlog
            ),
            None => format!(
                "fleet database: {} attempt(s) waiting, {} shipped",
                fleet.backlog, fleet.shipped
            ),
        };
        let class = if fleet.reachable { "sub" } else { "banner" };
        let _ = writeln!(html, "<div class=\"{class}\">{}</div>", escape(&text));
    }
    if let Some(why) = state.holding() {
        let _ = writeln!(
            html,
            "<div class=\"banner\">HOLDING: {} — no new unit starts; phones on their slots \
             wait unflashed</div>",
            escape(why)
        );
    }
    if let Some(why) = state.summary().and_then(|s| s.fleet_complete.as_deref()) {
        let _ = writeln!(
            html,
            "<div class=\"sub\">BATCH FINISHED: {}</div>",
            escape(why)
        );
    }
    if let Some(why) = state.stopping() {
        let _ = writeln!(
            html,
            "<div class=\"banner\">STOPPING: {}</div>",
            escape(why)
        );
    }
    let ordered = state.batch().map_or(0, |b| b.quantity);
    let yield_text = state
        .yield_percent()
        .map_or_else(|| "–".to_owned(), |y| format!("{y:.1} %"));
    let _ = writeln!(
        html,
        "<div class=\"counters\"><span>elapsed <b>{}</b></span>\
         <span>passed <b>{}</b> of {ordered} ordered</span>\
         <span>this run: <b>{}</b> passed, <b>{}</b> failed, {} aborted</span>\
         <span>in progress <b>{}</b></span><span>yield <b>{}</b></span>{}</div>",
        clock(state.elapsed_ms() / 1000),
        counts.units_passed,
        counts.passed,
        counts.failed,
        counts.aborted,
        counts.in_progress,
        escape(&yield_text),
        if state.is_finished() {
            "<span><b>batch finished</b></span>"
        } else {
            ""
        },
    );
    html.push_str(
        "<table><thead><tr><th>slot</th><th>port</th><th>serial</th><th>mode</th>\
         <th>state</th><th>step</th><th>verdict</th></tr></thead><tbody>\n",
    );
    for (slot, row) in state.slots() {
        let class = slot_state(&row.status);
        let (serial, mode, step, verdict) = match &row.status {
            SlotStatus::Empty => (String::new(), String::new(), String::new(), String::new()),
            SlotStatus::Occupied(unit) | SlotStatus::Vanished(unit) => {
                // A unit with a verdict has no current step.
                let phase = unit.phase.as_ref().filter(|_| unit.verdict.is_none());
                let step = match (phase, &unit.progress) {
                    (Some(phase), Some(progress)) => match progress.fraction() {
                        Some(f) => format!(
                            "{} <span class=\"bar\"><span style=\"width:{:.0}%\"></span></span> \
                             {:.0} %",
                            escape(&phase.to_string()),
                            f * 100.0,
                            f * 100.0
                        ),
                        None => escape(&phase.to_string()),
                    },
                    (Some(phase), None) => escape(&phase.to_string()),
                    (None, _) => String::new(),
                };
                let verdict = match &unit.verdict {
                    None if matches!(row.status, SlotStatus::Vanished(_)) => {
                        "unit left before a verdict".to_owned()
                    }
                    None => String::new(),
                    Some(Verdict::Pass) => "PASS".to_owned(),
                    Some(v @ Verdict::Fail(failure)) => format!(
                        "FAIL <span class=\"code\">{}</span> [{}]<br>{}",
                        failure.code(),
                        escape(&v.next_step().to_string()),
                        escape(&failure.sentence())
                    ),
                    Some(v @ Verdict::Aborted(interruption)) => format!(
                        "ABORTED [{}]<br>{}",
                        escape(&v.next_step().to_string()),
                        escape(&interruption.sentence())
                    ),
                };
                (
                    escape(unit.serial.as_deref().unwrap_or("–")),
                    escape(unit.mode.as_str()),
                    step,
                    verdict,
                )
            }
        };
        let _ = writeln!(
            html,
            "<tr class=\"{class}\"><td>{slot}</td><td>{}</td><td>{serial}</td><td>{mode}</td>\
             <td>{class}</td><td>{step}</td><td>{verdict}</td></tr>",
            escape(&row.port_path)
        );
    }
    html.push_str("</tbody></table>\n");
    let _ = writeln!(
        html,
        "<p class=\"sub\">as of {}</p></body></html>",
        escape(&crate::timestamp::Timestamp::from_unix_ms_u64(snapshot.now_ms).local())
    );
    html
}

//! Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` once per family, label values
//! escaped (`\\`, `\"`, `\n`), one sample per line, families in a fixed order.

use std::fmt::Write;

use super::Snapshot;
use crate::dashboard::SlotStatus;
use crate::verdict::{FailureCode, Verdict};

/// The states a slot is reported in; each slot has one series per state, 1 for its current one.
pub(super) const SLOT_STATES: [&str; 6] =
    ["empty", "working", "pass", "fail", "aborted", "vanished"];

pub(super) fn slot_state(status: &SlotStatus) -> &'static str {
    match status {
        SlotStatus::Empty => "empty",
        SlotStatus::Vanished(_) => "vanished",
        SlotStatus::Occupied(unit) => match &unit.verdict {
            None => "working",
            Some(Verdict::Pass) => "pass",
            Some(Verdict::Fail(_)) => "fail",
            Some(Verdict::Aborted(_)) => "aborted",
        },
    }
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        self
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(val));
            }
            self.text.push('}');
        }
        // Integers print without a fraction; NaN and infinities in Prometheus' spelling.
        let value = if value.is_nan() {
            "NaN".to_owned()
        } else if value.is_infinite() {
            if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
        } else if value.fract() == 0.0 && value.abs() < 1e15 {
            format!("{value:.0}")
        } else {
            format!("{value}")
        };
        let _ = writeln!(self.text, " {value}");
        self
    }
}

pub(super) fn render(snapshot: &Snapshot) -> String {
    let state = &snapshot.board.state;
    let counts = state.counts();
    let mut out = Exposition {
        text: String::new(),
    };

    if let Some(batch) = state.batch() {
        out.family(
            "flashgate_batch_info",
            "gauge",
            "The batch the station runs (always 1; its identity is in the labels).",
        )
        .sample(
            "flashgate_batch_info",
            &[
                ("station", &batch.station_id),
                ("work_order", &batch.work_order),
                ("product", &batch.product),
                ("region", &batch.region),
                ("build", &batch.build_id),
            ],
            1.0,
        );
        out.family(
            "flashgate_work_order_quantity",
            "gauge",
            "Units the work order asks for.",
        )
        .sample(
            "flashgate_work_order_quantity",
            &[],
            f64::from(batch.quantity),
        );
    }
    out.family(
        "flashgate_work_order_units_passed",
        "gauge",
        "Distinct units passed under the work order, earlier runs included.",
    )
    .sample(
        "flashgate_work_order_units_passed",
        &[],
        f64::from(counts.units_passed),
    );

    out.family(
        "flashgate_units_total",
        "counter",
        "Unit attempts of this run that reached a verdict, by verdict and failure code.",
    );
    out.sample(
        "flashgate_units_total",
        &[("verdict", "PASS"), ("code", "")],
        f64::from(counts.passed),
    );
    // Every code is exposed (0 until it happens), so a rate() over it is defined from the start.
    for code in FailureCode::ALL {
        let n = snapshot
            .board
            .failures_by_code
            .get(code.as_str())
            .copied()
            .unwrap_or(0);
        out.sample(
            "flashgate_units_total",
            &[("verdict", "FAIL"), ("code", code.as_str())],
            n as f64,
        );
    }
    out.sample(
        "flashgate_units_total",
        &[("verdict", "ABORTED"), ("code", "")],
        f64::from(counts.aborted),
    );

    out.family(
        "flashgate_yield_ratio",
        "gauge",
        "Passed share of this run's units with a verdict (0 to 1; NaN before the first).",
    )
    .sample(
        "flashgate_yield_ratio",
        &[],
        state.yield_percent().map_or(f64::NAN, |p| p / 100.0),
    );

    let elapsed_s = state.elapsed_ms() as f64 / 1000.0;
    out.family(
        "flashgate_batch_elapsed_seconds",
        "gauge",
        "Time since the batch started.",
    )
    .sample("flashgate_batch_elapsed_seconds", &[], elapsed_s);
    out.family(
        "flashgate_units_per_hour",
        "gauge",
        "Units passed per hour over this run.",
    )
    .sample(
        "flashgate_units_per_hour",
        &[],
        if elapsed_s > 0.0 {
            f64::from(counts.passed) * 3600.0 / elapsed_s
        } else {
            0.0
        },
    );
    out.family(
        "flashgate_throughput_bytes_per_second",
        "gauge",
        "Sum of the current transfer rates of the units being flashed or verified.",
    )
    .sample(
        "flashgate_throughput_bytes_per_second",
        &[],
        state.throughput().round(),
    );

    out.family(
        "flashgate_slot_state",
        "gauge",
        "1 for the state each slot is in (empty, working, pass, fail, aborted, vanished).",
    );
    for (slot, row) in state.slots() {
        let current = slot_state(&row.status);
        let slot = slot.to_string();
        for s in SLOT_STATES {
            out.sample(
                "flashgate_slot_state",
                &[("slot", &slot), ("port", &row.port_path), ("state", s)],
                if s == current { 1.0 } else { 0.0 },
            );
        }
    }
    out.family(
        "flashgate_slots_in_progress",
        "gauge",
        "Units on a slot without a verdict yet.",
    )
    .sample(
        "flashgate_slots_in_progress",
        &[],
        f64::from(counts.in_progress),
    );

    out.family(
        "flashgate_journal_commits_total",
        "counter",
        "Verdicts committed and synced to the journal in this run.",
    )
    .sample(
        "flashgate_journal_commits_total",
        &[],
        snapshot.board.journal_commits as f64,
    );
    out.family(
        "flashgate_journal_last_commit_timestamp_seconds",
        "gauge",
        "Unix time of the last verdict committed to the journal (0 before the first).",
    )
    .sample(
        "flashgate_journal_last_commit_timestamp_seconds",
        &[],
        snapshot
            .board
            .last_commit_ms
            .map_or(0.0, |ms| ms as f64 / 1000.0),
    );
    if let Some((daily, unit)) = snapshot.log_errors {
        out.family(
            "flashgate_log_write_errors_total",
            "counter",
            "Log lines that could not be written (a full or read-only log disk).",
        )
        .sample(
            "flashgate_log_write_errors_total",
            &[("log", "daily")],
            daily as f64,
        )
        .sample(
            "flashgate_log_write_errors_total",
            &[("log", "unit")],
            unit as f64,
        );
    }
    if let Some(fleet) = state.fleet() {
        out.family(
            "flashgate_fleet_backlog_rows",
            "gauge",
            "Finished attempts in the journal the fleet database has not committed yet.",
        )
        .sample("flashgate_fleet_backlog_rows", &[], fleet.backlog as f64);
        out.family(
            "flashgate_fleet_shipped_rows",
            "gauge",
            "Attempts of this journal the fleet database holds.",
        )
        .sample("flashgate_fleet_shipped_rows", &[], fleet.shipped as f64);
        out.family(
            "flashgate_fleet_reachable",
            "gauge",
            "1 when the fleet sync's last try reached the database.",
        )
        .sample(
            "flashgate_fleet_reachable",
            &[],
            if fleet.reachable { 1.0 } else { 0.0 },
        );
        if let Some(oldest) = fleet.oldest_unshipped_ms {
            out.family(
                "flashgate_fleet_oldest_unshipped_timestamp_seconds",
                "gauge",
                "When the oldest attempt waiting to be shipped finished (Unix time).",
            )
            .sample(
                "flashgate_fleet_oldest_unshipped_timestamp_seconds",
                &[],
                oldest as f64 / 1000.0,
            );
        }
    }
    out.family(
        "flashgate_station_stopping",
        "gauge",
        "1 once the station was asked to stop (a signal, or a journal that stopped answering).",
    )
    .sample(
        "flashgate_station_stopping",
        &[],
        if state.stopping().is_some() { 1.0 } else { 0.0 },
    );
    out.family(
        "flashgate_station_holding",
        "gauge",
        "1 while the fleet holds the station: no place free, or the fleet database unreachable \
         under `fleet.when_offline: stop`.",
    )
    .sample(
        "flashgate_station_holding",
        &[],
        if state.holding().is_some() { 1.0 } else { 0.0 },
    );
    out.family(
        "flashgate_batch_finished",
        "gauge",
        "1 once the batch has ended.",
    )
    .sample(
        "flashgate_batch_finished",
        &[],
        if state.is_finished() { 1.0 } else { 0.0 },
    );
    out.text
}

//! Which attempts a report covers (a station, a time window), and the units that passed beyond
//! the work order's quantity.

use std::collections::BTreeMap;

use rusqlite::params;

use super::query::{rows_in, AttemptRow, ROW_COLUMNS};
use super::{Journal, JournalError};
use crate::timestamp::Timestamp;

/// Attempts of a work order a report keeps: started at or after `since`, before `until`, on
/// `station_id`, on `line`. The default keeps every attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    pub station_id: Option<String>,
    /// The production line (attempts that recorded no line are never on one).
    pub line: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl ReportFilter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn keeps(&self, row: &AttemptRow) -> bool {
        self.station_id
            .as_deref()
            .is_none_or(|id| row.station_id == id)
            && self
                .line
                .as_deref()
                .is_none_or(|line| row.line.as_deref() == Some(line))
            && self.since.is_none_or(|since| row.started_at >= since)
            && self.until.is_none_or(|until| row.started_at < until)
    }
}

/// One attempt as exported, with whether its unit is beyond the work order's quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedAttempt {
    pub row: AttemptRow,
    /// The unit passed, and it was not among the first `quantity` distinct units to pass
    /// under this work order (in the whole journal, whatever the filter).
    pub over_quantity: bool,
}

/// Distinct units passed under a work order in the whole journal against its quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityCheck {
    pub units_passed: u64,
    pub quantity: Option<u32>,
    /// Serials that passed after the order already had `quantity` units, in order of their
    /// first pass.
    pub over: Vec<String>,
}

impl Journal {
    /// Every attempt of `work_order` the filter keeps, oldest first.
    pub fn attempts_of(
        &self,
        work_order: &str,
        filter: &ReportFilter,
    ) -> Result<Vec<AttemptRow>, JournalError> {
        let rows = rows_in(
            self.connection(),
            &format!("SELECT {ROW_COLUMNS} FROM attempts WHERE work_order = ?1 ORDER BY id"),
            params![work_order],
        )?;
        Ok(rows.into_iter().filter(|r| filter.keeps(r)).collect())
    }

    /// Whether more distinct units passed under `work_order` than it ordered. Counted over the
    /// whole journal: a report's filter narrows what it shows, not what the order holds.
    pub fn quantity_check(&self, work_order: &str) -> Result<QuantityCheck, JournalError> {
        let rows = self.attempts_of(work_order, &ReportFilter::default())?;
        let quantity = rows.iter().map(|r| r.work_order_quantity).max();
        // First pass of each unit, in the order of its finish (then attempt id).
        let mut first_pass: BTreeMap<&str, (Option<Timestamp>, i64)> = BTreeMap::new();
        for row in rows.iter().filter(|r| r.result == "PASS") {
            let Some(serial) = row.unit_serial.as_deref() else {
                continue;
            };
            let key = (row.finished_at, row.id);
            first_pass
                .entry(serial)
                .and_modify(|first| *first = (*first).min(key))
                .or_insert(key);
        }
        let mut order: Vec<(&str, (Option<Timestamp>, i64))> = first_pass.into_iter().collect();
        order.sort_by_key(|(_, key)| *key);
        let limit = quantity.map_or(usize::MAX, |q| q as usize);
        Ok(QuantityCheck {
            units_passed: order.len() as u64,
            quantity,
            over: order
                .iter()
                .skip(limit)
                .map(|(serial, _)| serial.to_string())
                .collect(),
        })
    }

    /// The attempts a CSV export of `work_order` holds, each marked when its unit passed beyond
    /// the order's quantity.
    pub fn export(
        &self,
        work_order: &str,
        filter: &ReportFilter,
    ) -> Result<Vec<ExportedAttempt>, JournalError> {
        let over = self.quantity_check(work_order)?.over;
        Ok(self
            .attempts_of(work_order, filter)?
            .into_iter()
            .map(|row| ExportedAttempt {
                over_quantity: row.result == "PASS"
                    && row
                        .unit_serial
                        .as_ref()
                        .is_some_and(|serial| over.contains(serial)),
                row,
            })
            .collect())
    }
}

//! How a work order's places stand across the fleet: passed, held by units in flight here or
//! at other stations, and which reservations have lapsed (their holder silent for the place
//! lease, by the database's clock). The gate reads it under the order's row lock before it
//! refuses a unit, and afresh at an interval for the batch's standing.

use super::FleetError;
use crate::run::Standing;
use crate::verdict::NotFlashed;

/// A reserved place whose holder's lease has lapsed: neither it nor its holder's station was
/// heard from for the lease ($2, seconds), by the database's clock.
pub(super) const LAPSED: &str = "p.state = 'reserved'
    AND p.since < now() - make_interval(secs => $2)
    AND NOT EXISTS (SELECT 1 FROM station_heartbeats h
                    WHERE h.journal_uid = p.holder_uid
                      AND h.heard_at >= now() - make_interval(secs => $2))";

/// How a work order's places stand across the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct PlaceCounts {
    ordered: i64,
    passed: i64,
    passed_here: i64,
    /// Reserved by units other stations are flashing (leases not lapsed).
    held_elsewhere: i64,
    /// Reserved by this station's units.
    held_here: i64,
}

impl PlaceCounts {
    /// All zero when the database has no row for the order yet (its first unit makes one).
    pub(super) fn read(
        client: &mut impl postgres::GenericClient,
        work_order: &str,
        station: &str,
        journal_uid: &str,
        lease_secs: f64,
    ) -> Result<Self, FleetError> {
        let row = client.query_opt(
            &format!(
                "SELECT w.quantity,
                    count(p.unit_serial) FILTER (WHERE p.state = 'passed'),
                    count(p.unit_serial) FILTER (WHERE p.state = 'passed' AND p.station_id = $3),
                    count(p.unit_serial) FILTER (WHERE p.state = 'reserved'
                        AND p.holder_uid <> $4 AND NOT ({LAPSED})),
                    count(p.unit_serial) FILTER (WHERE p.state = 'reserved' AND p.holder_uid = $4)
                 FROM work_orders w LEFT JOIN places p ON p.work_order = w.work_order
                 WHERE w.work_order = $1 GROUP BY w.quantity"
            ),
            &[&work_order, &lease_secs, &station, &journal_uid],
        )?;
        Ok(row.map_or_else(PlaceCounts::default, |r| PlaceCounts {
            ordered: r.get(0),
            passed: r.get(1),
            passed_here: r.get(2),
            held_elsewhere: r.get(3),
            held_here: r.get(4),
        }))
    }

    pub(super) fn standing(&self, work_order: &str) -> Standing {
        let taken = self.passed + self.held_elsewhere + self.held_here;
        if self.ordered == 0 || taken < self.ordered {
            return Standing::Open;
        }
        match self.refusal(work_order) {
            (why, NotFlashed::OrderComplete) => Standing::Complete { why },
            (why, _) => Standing::Hold { why },
        }
    }

    /// Why no place is free: the order complete, or every place left held by units in flight.
    pub(super) fn refusal(&self, work_order: &str) -> (String, NotFlashed) {
        if self.passed >= self.ordered {
            (
                format!(
                    "work order {work_order} complete across the fleet ({} of {} passed, this \
                     station {})",
                    self.passed, self.ordered, self.passed_here
                ),
                NotFlashed::OrderComplete,
            )
        } else {
            (
                format!(
                    "waiting for a place: {} held by other stations (work order {work_order}: \
                     {} of {} passed, {} being flashed here); they may fail and give one back",
                    self.held_elsewhere, self.passed, self.ordered, self.held_here
                ),
                NotFlashed::NoPlace,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(passed: i64, held_elsewhere: i64, held_here: i64) -> PlaceCounts {
        PlaceCounts {
            ordered: 10,
            passed,
            passed_here: 3,
            held_elsewhere,
            held_here,
        }
    }

    #[test]
    fn a_free_place_opens_the_station() {
        assert_eq!(counts(5, 2, 2).standing("WO-1"), Standing::Open);
        assert_eq!(PlaceCounts::default().standing("WO-1"), Standing::Open);
    }

    #[test]
    fn places_held_in_flight_hold_the_station_and_say_by_whom() {
        let standing = counts(6, 3, 1).standing("WO-1");
        assert_eq!(
            standing.hold(),
            Some(
                "waiting for a place: 3 held by other stations (work order WO-1: 6 of 10 \
                 passed, 1 being flashed here); they may fail and give one back"
            )
        );
        assert_eq!(counts(6, 3, 1).refusal("WO-1").1, NotFlashed::NoPlace);
    }

    #[test]
    fn every_place_passed_completes_the_order_naming_this_station_s_share() {
        let standing = counts(10, 0, 0).standing("WO-1");
        assert_eq!(
            standing.complete(),
            Some("work order WO-1 complete across the fleet (10 of 10 passed, this station 3)")
        );
        assert_eq!(
            counts(10, 0, 0).refusal("WO-1").1,
            NotFlashed::OrderComplete
        );
    }
}

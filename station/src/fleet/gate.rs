//! Before a unit is flashed, the fleet database is asked: is there still a place in the work
//! order's quantity (shared by every station working it), and has this serial passed
//! elsewhere? The place is taken under the work order's row lock, so two stations never take
//! more places together than the quantity. When the database cannot be reached, the station
//! follows its `fleet.when_offline` policy.
//!
//! The gate is also the batch's [`StartGate`]: its last answer (the order complete across the
//! fleet, every place left held by other stations, the database away under the `stop` policy)
//! holds or ends the batch, and the supervisor asks it afresh at an interval. Each such ask is
//! the station's heartbeat: a place whose holder has not been heard from for
//! `fleet.place_lease_secs` (by the database's clock) is given to a station that needs it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::FleetError;
use crate::config::{FleetConfig, OfflinePolicy};
use crate::journal::Journal;
use crate::run::{Standing, StartGate};
use crate::verdict::NotFlashed;

use super::places::{PlaceCounts, LAPSED};

/// The fleet's answer for one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Flash it: a place is held for it in the database (`reserved`), or it already counts as
    /// passed under this work order (`counted`, a re-flash). `seen_elsewhere` says where else
    /// the serial passed, for the operator and the row.
    Granted {
        place: &'static str,
        seen_elsewhere: Option<String>,
    },
    /// Flash it on the station's own allowance: the database did not answer.
    Offline { why: String },
    /// Do not flash it. `not_flashed`: the fleet's reason, when it holds or ends the batch
    /// (None: a fault to correct, such as a quantity the database disagrees with).
    Refused {
        why: String,
        not_flashed: Option<NotFlashed>,
    },
}

/// A failed connection is not tried again sooner than this: while the database is down, units
/// are decided at once rather than each waiting for a connect timeout.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The station's side of the fleet rules, shared by every unit job of a batch.
pub struct FleetGate {
    pub fleet: FleetConfig,
    pub station_id: String,
    pub journal_uid: String,
    pub work_order: String,
    pub quantity: u32,
    client: Mutex<Connection>,
    /// The last word on starting units, from the last admission or recheck.
    standing: Mutex<Standing>,
}

#[derive(Default)]
struct Connection {
    client: Option<postgres::Client>,
    failed_at: Option<Instant>,
    last_error: Option<FleetError>,
}

impl FleetGate {
    pub fn new(
        fleet: FleetConfig,
        station_id: String,
        journal_uid: String,
        work_order: String,
        quantity: u32,
    ) -> Self {
        FleetGate {
            fleet,
            station_id,
            journal_uid,
            work_order,
            quantity,
            client: Mutex::new(Connection::default()),
            standing: Mutex::new(Standing::Open),
        }
    }

    fn set_standing(&self, standing: Standing) {
        *self
            .standing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = standing;
    }

    /// The place lease as PostgreSQL takes it (seconds).
    fn lease_secs(&self) -> f64 {
        self.fleet.place_lease.as_secs_f64()
    }

    /// The banner while the database is away under the `stop` policy.
    /// Why the station holds on a fleet database it reaches but must not use yet.
    fn schema_hold(&self, error: &FleetError) -> String {
        format!(
            "FLEET DATABASE NOT USABLE ({}): {error}; no unit is flashed until then (whatever \
             `fleet.when_offline` says: the database is there, only not ready); units already \
             flashing finish",
            self.fleet.url
        )
    }

    fn offline_stop(&self, error: &FleetError) -> String {
        format!(
            "FLEET DATABASE NOT REACHED ({}): station.yaml says `fleet.when_offline: stop`, so \
             no unit is flashed until it answers; units already flashing finish ({error})",
            self.fleet.url
        )
    }

    /// The fleet's answer for the unit `serial` of journal row `row`. `journal` is asked how
    /// many units are on the offline allowance (it is the station's own count).
    pub fn admit(&self, row: i64, serial: &str, journal: &Mutex<Journal>) -> Admission {
        let admission = self.decide(row, serial, journal);
        match &admission {
            Admission::Granted { .. } | Admission::Offline { .. } => {
                self.set_standing(Standing::Open);
            }
            Admission::Refused {
                why,
                not_flashed: Some(code),
            } => self.set_standing(match code {
                NotFlashed::OrderComplete => Standing::Complete { why: why.clone() },
                NotFlashed::NoPlace | NotFlashed::FleetOffline => {
                    Standing::Hold { why: why.clone() }
                }
            }),
            Admission::Refused {
                not_flashed: None, ..
            } => {}
        }
        admission
    }

    fn decide(&self, row: i64, serial: &str, journal: &Mutex<Journal>) -> Admission {
        let asked = {
            let mut connection = self
                .client
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.ask(&mut connection, row, serial)
        };
        let error = match asked {
            Ok(admission) => return admission,
            Err(e) if e.is_schema_mismatch() => {
                return Admission::Refused {
                    why: self.schema_hold(&e),
                    not_flashed: Some(NotFlashed::FleetOffline),
                }
            }
            Err(e) if e.is_unreachable() => e,
            Err(e) => {
                return Admission::Refused {
                    why: format!("{e}; the unit was not flashed"),
                    not_flashed: None,
                }
            }
        };
        match self.fleet.offline {
            OfflinePolicy::Stop => Admission::Refused {
                why: self.offline_stop(&error),
                not_flashed: Some(NotFlashed::FleetOffline),
            },
            OfflinePolicy::Continue { allowance } => {
                let open = journal
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .offline_places_open();
                match open {
                    Ok(open) if open < allowance => Admission::Offline {
                        why: format!(
                            "{error}; flashed on the station's offline allowance ({} of {allowance} \
                             used), reconciled when the database answers",
                            open + 1
                        ),
                    },
                    Ok(open) => Admission::Refused {
                        why: format!(
                            "{error}; the station's offline allowance is used up ({open} of \
                             {allowance} units wait for the database)"
                        ),
                        not_flashed: None,
                    },
                    Err(e) => Admission::Refused {
                        why: format!("{error}; and the journal: {e}"),
                        not_flashed: None,
                    },
                }
            }
        }
    }

    fn ask(
        &self,
        connection: &mut Connection,
        row: i64,
        serial: &str,
    ) -> Result<Admission, FleetError> {
        self.with_client(connection, |client| self.reserve(client, row, serial))
    }

    /// Runs `work` on the gate's connection (made first if need be; dropped when the database
    /// went away, and not tried again sooner than [`RETRY_AFTER`]).
    fn with_client<T>(
        &self,
        connection: &mut Connection,
        work: impl FnOnce(&mut postgres::Client) -> Result<T, FleetError>,
    ) -> Result<T, FleetError> {
        if connection.client.is_none() {
            if let Some(at) = connection.failed_at {
                if at.elapsed() < RETRY_AFTER {
                    return Err(connection.last_error.as_ref().map_or_else(
                        || FleetError::Unreachable("not connected".into()),
                        FleetError::again,
                    ));
                }
            }
            match super::connect(&self.fleet, &format!("flashgate {} gate", self.station_id)) {
                Ok(client) => connection.client = Some(client),
                Err(e) => {
                    connection.failed_at = Some(Instant::now());
                    connection.last_error = Some(e.again());
                    return Err(e);
                }
            }
        }
        let Some(client) = connection.client.as_mut() else {
            return Err(FleetError::Unreachable("not connected".into()));
        };
        let answer = work(client);
        if let Err(e) = &answer {
            if e.is_unreachable() || client.is_closed() {
                connection.client = None;
                connection.failed_at = Some(Instant::now());
                connection.last_error = Some(e.again());
            }
        }
        answer
    }

    fn reserve(
        &self,
        client: &mut postgres::Client,
        row: i64,
        serial: &str,
    ) -> Result<Admission, FleetError> {
        let quantity = i64::from(self.quantity);
        let mut tx = client.transaction()?;
        self.heartbeat(&mut tx)?;
        tx.execute(
            "INSERT INTO work_orders (work_order, quantity) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&self.work_order, &quantity],
        )?;
        // The work order's row lock: every station's reservation for this order queues here.
        let ordered: i64 = tx
            .query_one(
                "SELECT quantity FROM work_orders WHERE work_order = $1 FOR UPDATE",
                &[&self.work_order],
            )?
            .get(0);
        if ordered != quantity {
            return Ok(Admission::Refused {
                not_flashed: None,
                why: format!(
                    "work order {} has quantity {ordered} in the fleet database but {quantity} in \
                     this station's work order file: correct the file (or the database's \
                     work_orders row) so every station counts the same order",
                    self.work_order
                ),
            });
        }
        let seen = seen_elsewhere(&mut tx, serial, &self.work_order, &self.station_id)?;
        let existing = tx.query_opt(
            "SELECT state, station_id FROM places WHERE work_order = $1 AND unit_serial = $2",
            &[&self.work_order, &serial],
        )?;
        let place = match existing {
            Some(found) if found.get::<_, String>(0) == "passed" => "counted",
            Some(_) => {
                // Held by an attempt that did not finish (a station that stopped, or the same
                // phone moved): this attempt takes the unit's one place over.
                self.hold_place(&mut tx, serial, row)?;
                "reserved"
            }
            None => {
                let taken: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM places WHERE work_order = $1",
                        &[&self.work_order],
                    )?
                    .get(0);
                if taken >= ordered && !self.release_lapsed_place(&mut tx)? {
                    let counts = PlaceCounts::read(
                        &mut tx,
                        &self.work_order,
                        &self.station_id,
                        &self.journal_uid,
                        self.lease_secs(),
                    )?;
                    let (why, code) = counts.refusal(&self.work_order);
                    return Ok(Admission::Refused {
                        why,
                        not_flashed: Some(code),
                    });
                }
                self.hold_place(&mut tx, serial, row)?;
                "reserved"
            }
        };
        tx.commit()?;
        Ok(Admission::Granted {
            place,
            seen_elsewhere: seen,
        })
    }
}

impl FleetGate {
    /// Records that this station is alive (the database's clock): its places keep their lease.
    fn heartbeat(&self, client: &mut impl postgres::GenericClient) -> Result<(), FleetError> {
        client.execute(
            "INSERT INTO station_heartbeats (journal_uid, station_id, heard_at)
             VALUES ($1, $2, now())
             ON CONFLICT (journal_uid) DO UPDATE SET station_id = $2, heard_at = now()",
            &[&self.journal_uid, &self.station_id],
        )?;
        Ok(())
    }

    /// Reserves the unit `serial`'s place in the order for this attempt (journal row `row`):
    /// a new place, or the one an unfinished attempt of the same unit held, taken over.
    fn hold_place(
        &self,
        tx: &mut postgres::Transaction<'_>,
        serial: &str,
        row: i64,
    ) -> Result<(), FleetError> {
        tx.execute(
            "INSERT INTO places (work_order, unit_serial, holder_uid, holder_row, station_id,
                 state)
             VALUES ($1, $2, $3, $4, $5, 'reserved')
             ON CONFLICT (work_order, unit_serial) DO UPDATE SET holder_uid = EXCLUDED.holder_uid,
                 holder_row = EXCLUDED.holder_row, station_id = EXCLUDED.station_id,
                 since = now()",
            &[
                &self.work_order,
                &serial,
                &self.journal_uid,
                &row,
                &self.station_id,
            ],
        )?;
        Ok(())
    }

    /// Under the work order's row lock: gives back the oldest place reserved by a holder not
    /// heard from for the lease (a station that crashed or lost the database), so this station
    /// can take it. Returns whether one was given back. The holder's attempt, should it still
    /// pass, is reconciled when shipped (flagged `over_quantity` if the order is then over).
    fn release_lapsed_place(&self, tx: &mut postgres::Transaction<'_>) -> Result<bool, FleetError> {
        let released = tx.query_opt(
            &format!(
                "DELETE FROM places p
                 WHERE p.work_order = $1 AND {LAPSED} AND p.unit_serial = (
                     SELECT p.unit_serial FROM places p
                     WHERE p.work_order = $1 AND {LAPSED}
                     ORDER BY p.since LIMIT 1)
                 RETURNING p.unit_serial, p.station_id, p.holder_row"
            ),
            &[&self.work_order, &self.lease_secs()],
        )?;
        let Some(released) = released else {
            return Ok(false);
        };
        tracing::warn!(
            work_order = %self.work_order,
            serial = %released.get::<_, String>(0),
            holder = %released.get::<_, String>(1),
            holder_row = released.get::<_, i64>(2),
            lease_secs = self.lease_secs(),
            "a place held by a station not heard from for the place lease was given back and \
             taken here"
        );
        Ok(true)
    }

    /// The order's standing, read afresh (and this station's heartbeat written).
    fn standing_now(&self, client: &mut postgres::Client) -> Result<Standing, FleetError> {
        self.heartbeat(client)?;
        let counts = PlaceCounts::read(
            client,
            &self.work_order,
            &self.station_id,
            &self.journal_uid,
            self.lease_secs(),
        )?;
        Ok(counts.standing(&self.work_order))
    }
}

impl StartGate for FleetGate {
    fn standing(&self) -> Standing {
        self.standing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn recheck(&self) -> Standing {
        let asked = {
            let mut connection = self
                .client
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.with_client(&mut connection, |client| self.standing_now(client))
        };
        let standing = match asked {
            Ok(standing) => standing,
            Err(e) if e.is_schema_mismatch() => Standing::Hold {
                why: self.schema_hold(&e),
            },
            Err(e) if e.is_unreachable() => match self.fleet.offline {
                OfflinePolicy::Stop => Standing::Hold {
                    why: self.offline_stop(&e),
                },
                // The allowance decides unit by unit.
                OfflinePolicy::Continue { .. } => Standing::Open,
            },
            Err(e) => {
                // A statement the database refused: the units' own admissions say what is
                // wrong; the batch's standing stays as it was.
                tracing::warn!(error = %e, "fleet database: the work order's standing could not be read");
                return StartGate::standing(self);
            }
        };
        self.set_standing(standing.clone());
        standing
    }

    fn recheck_every(&self) -> Duration {
        // Several heartbeats within one lease.
        (self.fleet.place_lease / 4).clamp(Duration::from_millis(250), RECHECK_AT_MOST)
    }
}

/// The longest pause between two asks of the order's standing (and heartbeats).
const RECHECK_AT_MOST: Duration = Duration::from_secs(2);

impl Drop for FleetGate {
    /// The blocking client closes its connection through a runtime of its own, which cannot
    /// start on a thread that drives async tasks (the gate's last owner may be one): it is
    /// closed on a thread of its own.
    fn drop(&mut self) {
        let connection = self
            .client
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = connection.client.take() {
            let _ = std::thread::Builder::new()
                .name("fleet-gate-close".into())
                .spawn(move || drop(client))
                .map(std::thread::JoinHandle::join);
        }
    }
}

/// Where else `serial` passed: under another work order, or at another station.
fn seen_elsewhere(
    tx: &mut postgres::Transaction<'_>,
    serial: &str,
    work_order: &str,
    station: &str,
) -> Result<Option<String>, FleetError> {
    let rows = tx.query(
        "SELECT DISTINCT station_id, work_order FROM attempts
         WHERE (unit_serial = $1 OR chip_serial = $1) AND result = 'PASS'
           AND (work_order <> $2 OR station_id <> $3)
         UNION
         SELECT DISTINCT station_id, work_order FROM places
         WHERE unit_serial = $1 AND state = 'passed' AND (work_order <> $2 OR station_id <> $3)
         ORDER BY 1, 2 LIMIT 20",
        &[&serial, &work_order, &station],
    )?;
    if rows.is_empty() {
        return Ok(None);
    }
    let places: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "station {} under {}",
                r.get::<_, String>(0),
                r.get::<_, String>(1)
            )
        })
        .collect();
    Ok(Some(format!("passed at {}", places.join(", "))))
}

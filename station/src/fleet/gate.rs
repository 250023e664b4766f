//! Before a unit is flashed, the fleet database is asked: is there still a place in the work
//! order's quantity (shared by every station working it), and has this serial passed
//! elsewhere? The place is taken under the work order's row lock, so two stations never take
//! more places together than the quantity. When the database cannot be reached, the station
//! follows its `fleet.when_offline` policy.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::FleetError;
use crate::config::{FleetConfig, OfflinePolicy};
use crate::journal::Journal;

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
    /// Do not flash it.
    Refused { why: String },
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
}

#[derive(Default)]
struct Connection {
    client: Option<postgres::Client>,
    failed_at: Option<Instant>,
    last_error: String,
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
        }
    }

    /// The fleet's answer for the unit `serial` of journal row `row`. `journal` is asked how
    /// many units are on the offline allowance (it is the station's own count).
    pub fn admit(&self, row: i64, serial: &str, journal: &Mutex<Journal>) -> Admission {
        let asked = {
            let mut connection = self
                .client
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.ask(&mut connection, row, serial)
        };
        let error = match asked {
            Ok(admission) => return admission,
            Err(e) if e.is_unreachable() => e,
            Err(e) => {
                return Admission::Refused {
                    why: format!("{e}; the unit was not flashed"),
                }
            }
        };
        match self.fleet.offline {
            OfflinePolicy::Stop => Admission::Refused {
                why: format!(
                    "{error}; station.yaml says `fleet.when_offline: stop`, so no unit is \
                     flashed until it answers"
                ),
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
                    },
                    Err(e) => Admission::Refused {
                        why: format!("{error}; and the journal: {e}"),
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
        if connection.client.is_none() {
            if let Some(at) = connection.failed_at {
                if at.elapsed() < RETRY_AFTER {
                    return Err(FleetError::Unreachable(connection.last_error.clone()));
                }
            }
            match super::connect(&self.fleet, &format!("flashgate {} gate", self.station_id)) {
                Ok(client) => connection.client = Some(client),
                Err(e) => {
                    connection.failed_at = Some(Instant::now());
                    connection.last_error = e.to_string();
                    return Err(e);
                }
            }
        }
        let Some(client) = connection.client.as_mut() else {
            return Err(FleetError::Unreachable("not connected".into()));
        };
        let answer = self.reserve(client, row, serial);
        if let Err(e) = &answer {
            if e.is_unreachable() || client.is_closed() {
                connection.client = None;
                connection.failed_at = Some(Instant::now());
                connection.last_error = e.to_string();
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
                tx.execute(
                    "UPDATE places SET holder_uid = $3, holder_row = $4, station_id = $5,
                         since = now()
                     WHERE work_order = $1 AND unit_serial = $2",
                    &[
                        &self.work_order,
                        &serial,
                        &self.journal_uid,
                        &row,
                        &self.station_id,
                    ],
                )?;
                "reserved"
            }
            None => {
                let taken: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM places WHERE work_order = $1",
                        &[&self.work_order],
                    )?
                    .get(0);
                if taken >= ordered {
                    return Ok(Admission::Refused {
                        why: format!(
                            "work order {} is complete across the fleet: its {ordered} places are \
                             passed or being flashed at its stations; the unit was not flashed",
                            self.work_order
                        ),
                    });
                }
                tx.execute(
                    "INSERT INTO places (work_order, unit_serial, holder_uid, holder_row,
                         station_id, state)
                     VALUES ($1, $2, $3, $4, $5, 'reserved')",
                    &[
                        &self.work_order,
                        &serial,
                        &self.journal_uid,
                        &row,
                        &self.station_id,
                    ],
                )?;
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

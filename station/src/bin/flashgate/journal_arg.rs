//! Where `report` and `history` find the attempts: `--journal FILE`, the `journal` path of
//! `--station station.yaml`, or every station's record in the fleet database (`--fleet URL`, or
//! `--fleet` with `--station`: its `fleet` section).

use std::path::PathBuf;

use anyhow::Context;
use station::config::{simulated_journal_path, PasswordSource, StationConfig, TlsMode};
use station::fleet::report::{FleetCopy, FleetSelection};
use station::journal::{AttemptRow, Journal};

#[derive(clap::Args)]
pub struct JournalArgs {
    /// The station whose journal to read (its `journal` path).
    #[arg(long, value_name = "station.yaml", required_unless_present_any = ["journal", "fleet"])]
    pub station: Option<PathBuf>,
    /// The journal file itself.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["station", "fleet"])]
    pub journal: Option<PathBuf>,
    /// Read the journal of the station's simulated runs (`run --sim N`) instead of its own.
    #[arg(long, requires = "station", conflicts_with = "fleet")]
    pub sim: bool,
    /// Read every station's attempts from the fleet database instead of one journal: its URL
    /// (postgres://USER@HOST/DB; the password from PGPASSWORD), or, without a URL, the
    /// database station.yaml's `fleet` names (with --station).
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub fleet: Option<String>,
}

/// A journal, or a scratch copy of fleet rows standing in for one.
pub enum Opened {
    Journal(Journal),
    Fleet(FleetCopy),
}

impl std::ops::Deref for Opened {
    type Target = Journal;

    fn deref(&self) -> &Journal {
        match self {
            Opened::Journal(journal) => journal,
            Opened::Fleet(copy) => &copy.journal,
        }
    }
}

impl Opened {
    /// `rows` with the attempt id the fleet keys them by: the row in its station's journal
    /// (`id`) and that journal's uid.
    pub fn with_attempt_ids(&self, rows: Vec<AttemptRow>) -> anyhow::Result<Vec<AttemptRow>> {
        Ok(match self {
            Opened::Journal(journal) => {
                let uid = journal.uid()?;
                rows.into_iter()
                    .map(|row| AttemptRow {
                        journal_uid: Some(uid.clone()),
                        ..row
                    })
                    .collect()
            }
            Opened::Fleet(copy) => copy.with_fleet_ids(rows),
        })
    }

    pub fn is_fleet(&self) -> bool {
        matches!(self, Opened::Fleet(_))
    }
}

/// A fleet database to reach: its URL (no password in it), the password's source, TLS.
pub struct FleetTarget {
    pub url: String,
    pub password: PasswordSource,
    pub tls: TlsMode,
}

impl JournalArgs {
    /// The fleet database `--fleet` names: its URL, or without one station.yaml's `fleet`.
    /// With `station_default`, no `--fleet` at all also means station.yaml's `fleet`, when it
    /// has one. None: no database named.
    pub fn fleet_target(&self, station_default: bool) -> anyhow::Result<Option<FleetTarget>> {
        let from_station = |required: bool| -> anyhow::Result<Option<FleetTarget>> {
            let Some(station) = &self.station else {
                anyhow::ensure!(
                    !required,
                    "--fleet without a URL reads station.yaml's `fleet`: give --station"
                );
                return Ok(None);
            };
            let station = StationConfig::load(station)?;
            match station.fleet {
                Some(fleet) => Ok(Some(FleetTarget {
                    url: fleet.url,
                    password: fleet.password,
                    tls: fleet.tls,
                })),
                None if required => anyhow::bail!(
                    "{} has no `fleet` section: give the database's URL (--fleet URL)",
                    station.source.display()
                ),
                None => Ok(None),
            }
        };
        match self.fleet.as_deref() {
            Some("") => from_station(true),
            Some(url) => Ok(Some(FleetTarget {
                url: url.to_string(),
                password: crate::fleet::env_password(),
                tls: crate::fleet::env_tls(),
            })),
            None if station_default => from_station(false),
            None => Ok(None),
        }
    }

    /// The station's journal (not the fleet).
    pub fn open(&self) -> anyhow::Result<Journal> {
        self.refuse_fleet()?;
        self.open_journal()
    }

    fn refuse_fleet(&self) -> anyhow::Result<()> {
        if self.fleet.is_some() {
            anyhow::bail!(
                "--fleet is not taken here: give --station station.yaml or --journal FILE"
            );
        }
        Ok(())
    }

    /// The station's journal, whatever `--fleet` says.
    pub fn open_journal(&self) -> anyhow::Result<Journal> {
        let path = self.path()?;
        Journal::open_existing(&path).with_context(|| format!("opening {}", path.display()))
    }

    /// The journal file these arguments name.
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        Ok(match (&self.journal, &self.station) {
            (Some(path), _) => path.clone(),
            (None, Some(station)) if self.sim => {
                simulated_journal_path(&StationConfig::load(station)?.journal)
            }
            (None, Some(station)) => StationConfig::load(station)?.journal,
            (None, None) => anyhow::bail!("give --station station.yaml or --journal FILE"),
        })
    }

    /// The journal, or with --fleet the fleet's attempts `selection` names.
    pub fn open_for(&self, selection: FleetSelection<'_>) -> anyhow::Result<Opened> {
        let Some(FleetTarget { url, password, tls }) = self.fleet_target(false)? else {
            return self.open().map(Opened::Journal);
        };
        let mut client = station::fleet::connect_url(&url, &password, &tls, "flashgate report")?;
        station::fleet::schema::check(&mut client)?;
        Ok(Opened::Fleet(station::fleet::report::copy(
            &mut client,
            selection,
        )?))
    }
}

//! Where `report` and `history` find the attempts: `--journal FILE`, the `journal` path of
//! `--station station.yaml`, or every station's record in the fleet database (`--fleet URL`, or
//! `--fleet` with `--station`: its `fleet` section).

use std::path::PathBuf;

use anyhow::Context;
use station::config::{simulated_journal_path, StationConfig};
use station::fleet::report::{FleetCopy, FleetSelection};
use station::journal::Journal;

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

impl JournalArgs {
    /// The station's journal (not the fleet).
    pub fn open(&self) -> anyhow::Result<Journal> {
        if self.fleet.is_some() {
            anyhow::bail!(
                "--fleet is not taken here: give --station station.yaml or --journal FILE"
            );
        }
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
        let Some(url) = &self.fleet else {
            return self.open().map(Opened::Journal);
        };
        let (url, password, tls) = if url.is_empty() {
            let station = self
                .station
                .as_ref()
                .context("--fleet without a URL reads station.yaml's `fleet`: give --station")?;
            let station = StationConfig::load(station)?;
            let fleet = station.fleet.with_context(|| {
                format!(
                    "{} has no `fleet` section: give the database's URL (--fleet URL)",
                    station.source.display()
                )
            })?;
            (fleet.url, fleet.password, fleet.tls)
        } else {
            (
                url.clone(),
                crate::fleet::env_password(),
                crate::fleet::env_tls(),
            )
        };
        let mut client = station::fleet::connect_url(&url, &password, &tls, "flashgate report")?;
        station::fleet::schema::check(&mut client)?;
        Ok(Opened::Fleet(station::fleet::report::copy(
            &mut client,
            selection,
        )?))
    }
}

//! Where `report` and `history` find the journal: `--journal FILE`, or the `journal` path of
//! `--station station.yaml`.

use std::path::PathBuf;

use anyhow::Context;
use station::config::{simulated_journal_path, StationConfig};
use station::journal::Journal;

#[derive(clap::Args)]
pub struct JournalArgs {
    /// The station whose journal to read (its `journal` path).
    #[arg(long, value_name = "station.yaml", required_unless_present = "journal")]
    pub station: Option<PathBuf>,
    /// The journal file itself.
    #[arg(long, value_name = "FILE", conflicts_with = "station")]
    pub journal: Option<PathBuf>,
    /// Read the journal of the station's simulated runs (`run --sim N`) instead of its own.
    #[arg(long, requires = "station")]
    pub sim: bool,
}

impl JournalArgs {
    pub fn open(&self) -> anyhow::Result<Journal> {
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
}

//! Where `report` and `history` find the journal: `--journal FILE`, or the `journal` path of
//! `--station station.yaml`.

use std::path::PathBuf;

use anyhow::Context;
use station::config::StationConfig;
use station::journal::Journal;

#[derive(clap::Args)]
pub struct JournalArgs {
    /// The station whose journal to read (its `journal` path).
    #[arg(long, value_name = "station.yaml", required_unless_present = "journal")]
    pub station: Option<PathBuf>,
    /// The journal file itself.
    #[arg(long, value_name = "FILE", conflicts_with = "station")]
    pub journal: Option<PathBuf>,
}

impl JournalArgs {
    pub fn open(&self) -> anyhow::Result<Journal> {
        let path = match (&self.journal, &self.station) {
            (Some(path), _) => path.clone(),
            (None, Some(station)) => StationConfig::load(station)?.journal,
            (None, None) => anyhow::bail!("give --station station.yaml or --journal FILE"),
        };
        Journal::open_existing(&path).with_context(|| format!("opening {}", path.display()))
    }
}

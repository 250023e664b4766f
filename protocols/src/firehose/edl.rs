//! From a phone in EDL to a configured Firehose session: upload the programmer with Sahara (or
//! notice one already runs), hand the link and any bytes Sahara read past its last packet to the
//! Firehose client, drain the programmer's greeting and `configure`.

use std::sync::Arc;

use super::client::{Firehose, FirehoseConfig};
use super::configure::ConfigureInfo;
use super::FirehoseError;
use crate::progress::ProgressSink;
use crate::sahara::{
    SaharaError, SaharaHost, SaharaImages, SaharaOutcome, SaharaTimeouts, UploadReport,
};
use crate::transport::Transport;

#[derive(Debug, thiserror::Error)]
pub enum EdlError {
    #[error("Sahara: {0}")]
    Sahara(#[from] SaharaError),
    #[error("Firehose: {0}")]
    Firehose(#[from] FirehoseError),
}

impl EdlError {
    pub fn is_disconnect(&self) -> bool {
        match self {
            EdlError::Sahara(e) => e.is_disconnect(),
            EdlError::Firehose(e) => e.is_disconnect(),
        }
    }
}

/// A configured programmer session.
pub struct EdlSession<T: Transport> {
    pub firehose: Firehose<T>,
    /// `None` when a programmer was already running (Sahara skipped).
    pub upload: Option<UploadReport>,
    pub configure: ConfigureInfo,
    /// The programmer's start-up log lines, if it greeted.
    pub greeting: Vec<String>,
}

/// Upload `programmer` and configure it.
pub fn start<T: Transport>(
    mut link: T,
    programmer: &SaharaImages,
    sahara_timeouts: SaharaTimeouts,
    config: FirehoseConfig,
    progress: Arc<dyn ProgressSink>,
) -> Result<EdlSession<T>, EdlError> {
    let outcome = SaharaHost::with_timeouts(&mut link, sahara_timeouts)
        .upload(programmer, progress.as_ref())?;
    let (upload, already_read) = match outcome {
        SaharaOutcome::ProgrammerLoaded(report) => (Some(report), Vec::new()),
        SaharaOutcome::FirehoseAlreadyRunning { already_read } => (None, already_read),
    };
    let mut firehose = Firehose::with_pushback(link, config, &already_read);
    firehose.set_progress(progress);
    let greeting = firehose.wait_for_greeting()?;
    let configure = firehose.configure()?;
    Ok(EdlSession {
        firehose,
        upload,
        configure,
        greeting,
    })
}

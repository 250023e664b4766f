//! The fleet: every station's record in one PostgreSQL database. The station's SQLite journal
//! stays the first place a verdict is committed (a station works while the network is down);
//! an outbox ships its finished rows to the fleet database ([`sync`]), where the rules that span
//! stations are kept ([`gate`]: a work order's quantity shared by every station working it, a
//! serial passed elsewhere flagged before flashing).

pub mod gate;
pub mod holdings;
pub mod local_server;
mod places;
pub mod report;
pub mod schema;
pub mod ship;
pub mod sync;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use gate::{Admission, FleetGate};
pub use local_server::{LocalPostgres, LocalServerError};
pub use schema::FLEET_SCHEMA_VERSION;
pub use sync::{SyncHandle, SyncStatus};

use crate::config::{FleetConfig, PasswordSource, TlsMode};
use crate::journal::JournalError;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("fleet database: cannot read the password: {0}")]
    Password(String),
    #[error("fleet database `{url}`: {detail}")]
    Url { url: String, detail: String },
    #[error("fleet database TLS: {0}")]
    Tls(String),
    #[error("fleet database unreachable: {0}")]
    Unreachable(String),
    #[error("fleet database: {0}")]
    Sql(String),
    #[error("the fleet database's schema is v{found}, this flashgate knows v{supported}: run `flashgate fleet migrate --station station.yaml`")]
    OlderSchema { found: i32, supported: i32 },
    #[error("the fleet database's schema is v{found}, written by a newer flashgate (this one knows v{supported}): upgrade flashgate")]
    NewerSchema { found: i32, supported: i32 },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl From<postgres::Error> for FleetError {
    /// An error the server answered (a SQLSTATE) is the statement's; anything else (refused,
    /// cut, timed out) means the database cannot be reached now.
    fn from(e: postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => FleetError::Sql(format!("{} ({})", db.message(), db.code().code())),
            None => FleetError::Unreachable(error_chain(&e)),
        }
    }
}

impl FleetError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, FleetError::Unreachable(_))
    }

    /// A database whose schema this flashgate does not know as current: reachable, but not to
    /// be used until it is migrated (or flashgate upgraded).
    pub fn is_schema_mismatch(&self) -> bool {
        matches!(
            self,
            FleetError::OlderSchema { .. } | FleetError::NewerSchema { .. }
        )
    }

    /// The same failure again, for a connection that is not retried yet: a schema mismatch
    /// stays one, anything else is the database not reached.
    pub fn again(&self) -> FleetError {
        match *self {
            FleetError::OlderSchema { found, supported } => {
                FleetError::OlderSchema { found, supported }
            }
            FleetError::NewerSchema { found, supported } => {
                FleetError::NewerSchema { found, supported }
            }
            FleetError::Unreachable(ref why) => FleetError::Unreachable(why.clone()),
            ref other => FleetError::Unreachable(other.to_string()),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text
}

/// How long a connection attempt waits for the server (unless the URL says otherwise).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection to the fleet database as `fleet` names it (password read now), and
/// checks its schema. `who` names this connection in the server's activity list.
pub fn connect(fleet: &FleetConfig, who: &str) -> Result<postgres::Client, FleetError> {
    let mut client = connect_unchecked(fleet, who)?;
    schema::check(&mut client)?;
    Ok(client)
}

/// As [`connect`], without the schema check (for `fleet migrate`).
pub fn connect_unchecked(fleet: &FleetConfig, who: &str) -> Result<postgres::Client, FleetError> {
    connect_url(&fleet.url, &fleet.password, &fleet.tls, who)
}

/// A connection to `url` (which holds no password), with the password from `password`.
pub fn connect_url(
    url: &str,
    password: &PasswordSource,
    tls: &TlsMode,
    who: &str,
) -> Result<postgres::Client, FleetError> {
    let mut config = postgres::Config::from_str(url).map_err(|e| FleetError::Url {
        url: url.to_string(),
        detail: e.to_string(),
    })?;
    match password {
        PasswordSource::None => {}
        PasswordSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                FleetError::Password(format!("fleet.password_file {}: {e}", path.display()))
            })?;
            config.password(text.lines().next().unwrap_or_default());
        }
        PasswordSource::Env(var) => {
            let value = std::env::var(var).map_err(|_| {
                FleetError::Password(format!(
                    "fleet.password_env: the environment variable {var} is not set"
                ))
            })?;
            config.password(value);
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config
        .application_name(who)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        // A statement the server does not finish in time fails instead of holding a unit.
        .options("-c statement_timeout=15000 -c lock_timeout=10000");
    let connected = match tls {
        TlsMode::Off => config.connect(postgres::NoTls),
        TlsMode::Verify { ca_file } => {
            config.ssl_mode(postgres::config::SslMode::Require);
            config.connect(tls_connector(ca_file)?)
        }
    };
    connected.map_err(|e| FleetError::Unreachable(format!("{url}: {}", error_chain(&e))))
}

/// rustls (ring) trusting only the CAs of `ca_file` (PEM).
fn tls_connector(
    ca_file: &std::path::Path,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, FleetError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bad =
        |detail: String| FleetError::Tls(format!("fleet.ca_file {}: {detail}", ca_file.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| FleetError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

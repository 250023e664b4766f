//! `station.yaml` `fleet:`: the fleet database (PostgreSQL) this station ships its journal to
//! and asks before flashing, and what the station does while that database cannot be reached.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, KeyPath};
use super::yaml::YamlDocument;

/// The fleet database, validated. The URL holds no secret: the password is read when the
/// station connects, from a file or from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// `postgres://user@host:port/database`, as written (no password in it).
    pub url: String,
    pub password: PasswordSource,
    pub offline: OfflinePolicy,
    pub tls: TlsMode,
    /// A place reserved by a station not heard from for this long (by the database's clock)
    /// is given to another station that needs it.
    pub place_lease: Duration,
}

/// `fleet.place_lease_secs` when not set: long enough for a station's database connection to
/// come back from a short cut, short enough that a crashed station's places return within a
/// few minutes.
pub const DEFAULT_PLACE_LEASE: Duration = Duration::from_secs(180);
/// The bounds of `fleet.place_lease_secs`.
pub const PLACE_LEASE_SECS: std::ops::RangeInclusive<u64> = 2..=86_400;

/// How the connection to the fleet database is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP (a database on the station's own, trusted network).
    Off,
    /// TLS required; the server's certificate must chain to a CA in this PEM file and name the
    /// URL's host.
    Verify { ca_file: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// No password (trust, or a peer that needs none).
    None,
    /// The first line of this file (absolute, or relative to station.yaml's folder).
    File(PathBuf),
    /// This environment variable of the station's process.
    Env(String),
}

/// What a station does when the fleet database does not answer before a unit is flashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflinePolicy {
    /// No unit is flashed until the database answers again (the unit is ABORTED, unflashed).
    Stop,
    /// Up to `allowance` units are flashed without a place reserved in the database; once it
    /// answers again their rows are shipped and any pass beyond the work order's quantity they
    /// caused is flagged (`over_quantity`) in the fleet record.
    Continue { allowance: u32 },
}

/// The most units a station flashes on its own word while the fleet database is unreachable.
pub const MAX_OFFLINE_ALLOWANCE: u32 = 100_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FleetFile {
    url: String,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default)]
    when_offline: Option<WhenOffline>,
    #[serde(default)]
    offline_allowance: Option<u32>,
    #[serde(default)]
    tls: Option<TlsFile>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    place_lease_secs: Option<u64>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum TlsFile {
    Off,
    Verify,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum WhenOffline {
    Stop,
    Continue,
}

pub(super) fn validate_fleet(
    doc: &YamlDocument,
    base: &std::path::Path,
    raw: FleetFile,
) -> Result<FleetConfig, ConfigError> {
    let url_key = KeyPath::of(&["fleet", "url"]);
    if !(raw.url.starts_with("postgres://") || raw.url.starts_with("postgresql://")) {
        return Err(doc.error_at(
            &url_key,
            format!("`{}` is not a PostgreSQL URL", raw.url),
            "write postgres://USER@HOST:PORT/DATABASE, e.g. postgres://flashgate@db.line3:5432/fleet",
        ));
    }
    let parsed = postgres::Config::from_str(&raw.url).map_err(|e| {
        doc.error_at(
            &url_key,
            format!("`{}` cannot be read: {e}", raw.url),
            "write postgres://USER@HOST:PORT/DATABASE",
        )
    })?;
    if parsed.get_password().is_some() {
        return Err(doc.error_at(
            &url_key,
            "the URL holds a password (station.yaml is no place for a secret)",
            "remove it from the URL and name a file holding it (`password_file`) or an \
             environment variable (`password_env`)",
        ));
    }
    if parsed.get_user().is_none() {
        return Err(doc.error_at(
            &url_key,
            "the URL names no user",
            "write the role before the host: postgres://flashgate@HOST/DATABASE",
        ));
    }
    let password = match (raw.password_file, raw.password_env) {
        (Some(_), Some(_)) => {
            return Err(doc.error_at(
                &KeyPath::of(&["fleet", "password_env"]),
                "both `password_file` and `password_env` are set",
                "keep one of them",
            ))
        }
        (Some(file), None) => PasswordSource::File(base.join(file)),
        (None, Some(var)) => {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(doc.error_at(
                    &KeyPath::of(&["fleet", "password_env"]),
                    format!("`{var}` is not an environment variable name"),
                    "e.g. FLASHGATE_FLEET_PASSWORD",
                ));
            }
            PasswordSource::Env(var)
        }
        (None, None) => PasswordSource::None,
    };
    let offline = match (
        raw.when_offline.unwrap_or(WhenOffline::Stop),
        raw.offline_allowance,
    ) {
        (WhenOffline::Stop, None) => OfflinePolicy::Stop,
        (WhenOffline::Stop, Some(_)) => {
            return Err(doc.error_at(
                &KeyPath::of(&["fleet", "offline_allowance"]),
                "an allowance is set, but `when_offline` is `stop`",
                "set `when_offline: continue` to use it, or remove `offline_allowance`",
            ))
        }
        (WhenOffline::Continue, Some(allowance))
            if (1..=MAX_OFFLINE_ALLOWANCE).contains(&allowance) =>
        {
            OfflinePolicy::Continue { allowance }
        }
        (WhenOffline::Continue, allowance) => {
            return Err(doc.error_at(
                &KeyPath::of(&["fleet", "offline_allowance"]),
                match allowance {
                    None => "`when_offline: continue` needs an `offline_allowance`".to_string(),
                    Some(n) => format!("{n} is out of range"),
                },
                format!(
                    "give how many units this station may flash while the fleet database is \
                     unreachable, 1 to {MAX_OFFLINE_ALLOWANCE}"
                ),
            ))
        }
    };
    let tls = match (raw.tls.unwrap_or(TlsFile::Off), raw.ca_file) {
        (TlsFile::Off, None) => TlsMode::Off,
        (TlsFile::Verify, Some(ca_file)) => TlsMode::Verify {
            ca_file: base.join(ca_file),
        },
        (TlsFile::Off, Some(_)) => {
            return Err(doc.error_at(
                &KeyPath::of(&["fleet", "ca_file"]),
                "a CA file is set, but `tls` is `off`",
                "set `tls: verify` to use it, or remove `ca_file`",
            ))
        }
        (TlsFile::Verify, None) => {
            return Err(doc.error_at(
                &KeyPath::of(&["fleet", "tls"]),
                "`tls: verify` needs the CA that signed the database's certificate",
                "name its PEM file in `ca_file`",
            ))
        }
    };
    let place_lease = match raw.place_lease_secs {
        None => DEFAULT_PLACE_LEASE,
        Some(secs) if PLACE_LEASE_SECS.contains(&secs) => Duration::from_secs(secs),
        Some(secs) => {
            return Err(doc.error_at(
                &KeyPath::of(&["fleet", "place_lease_secs"]),
                format!("{secs} s is out of range"),
                format!(
                    "use {} to {} seconds (default {})",
                    PLACE_LEASE_SECS.start(),
                    PLACE_LEASE_SECS.end(),
                    DEFAULT_PLACE_LEASE.as_secs()
                ),
            ))
        }
    };
    Ok(FleetConfig {
        url: raw.url,
        password,
        offline,
        tls,
        place_lease,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::StationConfig;

    fn load(fleet: &str) -> Result<StationConfig, ConfigError> {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo");
        let text = std::fs::read_to_string(demo.join("station.yaml")).unwrap();
        let file = demo.join("station.yaml");
        StationConfig::from_bytes(&file, format!("{text}\nfleet:\n{fleet}").as_bytes())
    }

    #[test]
    fn reads_the_fleet_section() {
        let station = load(
            "  url: postgres://flashgate@db.line3:5432/fleet\n  password_env: FG_PW\n  \
             when_offline: continue\n  offline_allowance: 12\n",
        )
        .unwrap();
        let fleet = station.fleet.unwrap();
        assert_eq!(fleet.url, "postgres://flashgate@db.line3:5432/fleet");
        assert_eq!(fleet.password, PasswordSource::Env("FG_PW".into()));
        assert_eq!(fleet.offline, OfflinePolicy::Continue { allowance: 12 });
        assert_eq!(fleet.place_lease, DEFAULT_PLACE_LEASE);
        let stop = load(
            "  url: postgres://fg@db/fleet\n  password_file: pw.txt\n  place_lease_secs: 30\n",
        )
        .unwrap();
        let fleet = stop.fleet.unwrap();
        assert_eq!(fleet.offline, OfflinePolicy::Stop);
        assert_eq!(fleet.place_lease, Duration::from_secs(30));
        assert!(matches!(&fleet.password, PasswordSource::File(p) if p.ends_with("pw.txt")));
    }

    #[test]
    fn refuses_secrets_and_half_policies() {
        let cases = [
            ("  url: postgres://fg:secret@db/fleet\n", "password"),
            ("  url: mysql://fg@db/fleet\n", "not a PostgreSQL URL"),
            ("  url: postgres://db/fleet\n", "no user"),
            (
                "  url: postgres://fg@db/fleet\n  when_offline: continue\n",
                "needs an `offline_allowance`",
            ),
            (
                "  url: postgres://fg@db/fleet\n  offline_allowance: 3\n",
                "`when_offline` is `stop`",
            ),
            (
                "  url: postgres://fg@db/fleet\n  password_file: a\n  password_env: B\n",
                "both",
            ),
            (
                "  url: postgres://fg@db/fleet\n  tls: verify\n",
                "needs the CA",
            ),
            (
                "  url: postgres://fg@db/fleet\n  ca_file: ca.pem\n",
                "`tls` is `off`",
            ),
            (
                "  url: postgres://fg@db/fleet\n  place_lease_secs: 1\n",
                "1 s is out of range",
            ),
        ];
        for (fleet, expected) in cases {
            let error = load(fleet).unwrap_err().to_string();
            assert!(error.contains(expected), "{fleet}: {error}");
            assert!(error.contains("fleet."), "{fleet}: {error} names the key");
        }
    }
}

//! What the fleet database holds of one station's journal (`flashgate sync status`): how many
//! of its rows, and the last. Asked on a thread of its own with a bound on the whole exchange,
//! so a database that accepts the connection and then stops answering cannot hang the caller.

use std::sync::mpsc;
use std::time::Duration;

use super::FleetError;
use crate::config::{PasswordSource, TlsMode};

/// The rows of one journal in the fleet database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holdings {
    pub rows: u64,
    /// The highest journal row it holds.
    pub last_row: Option<i64>,
    /// When that journal's last row was stored (ms since the epoch).
    pub last_shipped_ms: Option<i64>,
}

/// The fleet database at `url`'s rows of the journal `journal_uid`, or why it did not say
/// within `within` (connecting included).
pub fn holdings(
    url: &str,
    password: &PasswordSource,
    tls: &TlsMode,
    journal_uid: &str,
    within: Duration,
) -> Result<Holdings, FleetError> {
    let (tx, rx) = mpsc::channel();
    let (url, password, tls, uid) = (
        url.to_string(),
        password.clone(),
        tls.clone(),
        journal_uid.to_string(),
    );
    let spawned = std::thread::Builder::new()
        .name("fleet-holdings".into())
        .spawn(move || {
            let _ = tx.send(ask(&url, &password, &tls, &uid));
        });
    if let Err(e) = spawned {
        return Err(FleetError::Unreachable(format!(
            "cannot start the query's thread: {e}"
        )));
    }
    // On a timeout the thread is left to its own timeouts (connect, keepalive); the caller is a
    // one-shot command that exits.
    rx.recv_timeout(within).unwrap_or_else(|_| {
        Err(FleetError::Unreachable(format!(
            "no answer within {} s",
            within.as_secs_f64()
        )))
    })
}

fn ask(
    url: &str,
    password: &PasswordSource,
    tls: &TlsMode,
    journal_uid: &str,
) -> Result<Holdings, FleetError> {
    let mut client = super::connect_url(url, password, tls, "flashgate sync status")?;
    let row = client.query_one(
        "SELECT count(*), max(journal_row),
                (extract(epoch FROM max(shipped_at)) * 1000)::bigint
         FROM attempts WHERE journal_uid = $1",
        &[&journal_uid],
    )?;
    Ok(Holdings {
        rows: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        last_row: row.get(1),
        last_shipped_ms: row.get(2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_never_answers_is_given_up_on_in_time() {
        // Accepts the connection, then says nothing (the startup message is never answered).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "postgres://flashgate@{}/flashgate?connect_timeout=30",
            listener.local_addr().unwrap()
        );
        let started = std::time::Instant::now();
        let answer = holdings(
            &url,
            &PasswordSource::None,
            &TlsMode::Off,
            "00",
            Duration::from_millis(300),
        );
        let error = answer.unwrap_err();
        assert!(error.is_unreachable(), "{error}");
        assert!(
            error.to_string().contains("no answer within 0.3 s"),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
        drop(listener);
    }
}

//! The station's event stream on a local Unix socket, for `flashgate dashboard` on any terminal
//! of the line PC while the station runs headless (a systemd service has no terminal).
//!
//! The wire is JSON lines: a `hello` control line, the [`replay`] of the batch so far, a `live`
//! line, then every event as `flashgate run --json` prints it, with a `heartbeat` line when the
//! station is quiet. The last line says why the stream ends (`end`, or `dropped` for a client
//! that fell behind). Readers send nothing.
//!
//! A slow reader never slows the station: [`EventPublisher::emit`] only queues a shared line
//! on each client's bounded queue; a client whose queue is full is dropped (told so when its
//! socket takes writes again), and a writer that cannot write for [`WRITE_TIMEOUT`] gives up.

mod client;
mod replay;

use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use client::{AttachError, EventStream, StreamItem};
pub use replay::Replay;

use crate::events::{Event, EventSink};

/// The wire format's version, in the `hello` line.
pub const STREAM_VERSION: u32 = 1;
/// Events queued for one client before it counts as fallen behind: minutes of a quiet station,
/// seconds of 32 phones' progress.
pub const CLIENT_QUEUE: usize = 4096;
/// At most this many readers at once (each costs a thread and a queue).
pub const MAX_CLIENTS: usize = 16;
/// How often the accept loop looks whether the publisher was closed.
const ACCEPT_POLL: Duration = Duration::from_millis(200);
/// A writer blocked this long on a client that does not read gives up on it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A line goes out at least this often, so a reader can tell a quiet station from a hung one.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Where the station publishes when nothing names the socket: beside the journal
/// (`journal.sqlite` → `journal.events.sock`), which is one station's state folder.
pub fn socket_beside_journal(journal: &Path) -> PathBuf {
    journal.with_extension("events.sock")
}

/// The packaged service's socket (`RuntimeDirectory=flashgate`).
pub const SERVICE_SOCKET: &str = "/run/flashgate/events.sock";

/// Where `flashgate run` publishes unless told: in the runtime directory systemd made for the
/// service (`$RUNTIME_DIRECTORY`, its first entry), else beside the journal.
pub fn default_socket(journal: &Path, runtime_directory: Option<std::ffi::OsString>) -> PathBuf {
    let runtime = runtime_directory
        .as_deref()
        .and_then(|dirs| std::env::split_paths(dirs).next())
        .filter(|dir| dir.is_absolute());
    match runtime {
        Some(dir) => dir.join("events.sock"),
        None => socket_beside_journal(journal),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "another station already publishes its events on {path}; stop it, or give this run \
         another socket with --events-socket"
    )]
    InUse { path: PathBuf },
    #[error("cannot publish the station's events on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

struct Client {
    queue: SyncSender<Arc<str>>,
    fell_behind: Arc<AtomicBool>,
}

struct Shared {
    replay: Replay,
    clients: Vec<Client>,
    closed: bool,
}

/// Publishes every event it is given to the clients attached to its socket. An [`EventSink`].
pub struct EventPublisher {
    path: PathBuf,
    shared: Arc<Mutex<Shared>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl EventPublisher {
    /// Binds `path` (mode 0660: the station's group may attach) and starts accepting. A socket
    /// file left by a station that died is replaced; a live one is refused.
    pub fn bind(path: &Path) -> Result<Self, PublishError> {
        let io = |source| PublishError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.exists() {
            match UnixStream::connect(path) {
                Ok(_) => {
                    return Err(PublishError::InUse {
                        path: path.to_path_buf(),
                    })
                }
                // Nobody listens: a stale socket of a station that ended without removing it.
                Err(_) => std::fs::remove_file(path).map_err(io)?,
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        // Accept waits in poll() so the loop sees `closed` even when nobody can connect any
        // more (the socket file was deleted under a running station).
        listener.set_nonblocking(true).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
        let shared = Arc::new(Mutex::new(Shared {
            replay: Replay::new(),
            clients: Vec::new(),
            closed: false,
        }));
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("events-accept".into())
                .spawn(move || accept_loop(listener, shared))
                .map_err(io)?
        };
        Ok(Self {
            path: path.to_path_buf(),
            shared,
            accept: Some(accept),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Clients attached now.
    pub fn clients(&self) -> usize {
        lock(&self.shared).clients.len()
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventSink for EventPublisher {
    fn emit(&self, event: Event) {
        let line: Arc<str> = match serde_json::to_string(&event) {
            Ok(line) => line.into(),
            Err(_) => return,
        };
        let mut shared = lock(&self.shared);
        shared.replay.record(&event, &line);
        shared
            .clients
            .retain(|client| match client.queue.try_send(line.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    client.fell_behind.store(true, Ordering::SeqCst);
                    tracing::info!(
                        "a dashboard client fell {CLIENT_QUEUE} events behind and was dropped"
                    );
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
    }
}

impl Drop for EventPublisher {
    /// Ends every client's stream with `end`, stops accepting and removes the socket file.
    fn drop(&mut self) {
        {
            let mut shared = lock(&self.shared);
            shared.closed = true;
            shared.clients.clear();
        }
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn control(kind: &str, extra: serde_json::Value) -> String {
    let mut line = serde_json::json!({ "control": kind });
    if let (Some(line), serde_json::Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    line.to_string()
}

/// The next client, or `None` once the publisher is closed.
fn next_client(listener: &UnixListener, shared: &Mutex<Shared>) -> Option<UnixStream> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let every = Timespec::try_from(ACCEPT_POLL).ok();
    loop {
        if lock(shared).closed {
            return None;
        }
        let mut fds = [PollFd::new(listener, PollFlags::IN)];
        if poll(&mut fds, every.as_ref()).is_err() {
            std::thread::sleep(ACCEPT_POLL);
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                // Writers block (with their timeout); only the listener is non-blocking.
                if stream.set_nonblocking(false).is_ok() {
                    return Some(stream);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

fn accept_loop(listener: UnixListener, shared: Arc<Mutex<Shared>>) {
    while let Some(stream) = next_client(&listener, &shared) {
        let mut guard = lock(&shared);
        if guard.closed {
            return;
        }
        if guard.clients.len() >= MAX_CLIENTS {
            drop(guard);
            refuse(stream);
            continue;
        }
        let snapshot = guard.replay.lines();
        let (queue, lines) = mpsc::sync_channel(CLIENT_QUEUE);
        let fell_behind = Arc::new(AtomicBool::new(false));
        let writer = {
            let fell_behind = fell_behind.clone();
            std::thread::Builder::new()
                .name("events-client".into())
                .spawn(move || write_client(stream, snapshot, lines, fell_behind))
        };
        // Registered under the same lock as the snapshot: no event is lost or sent twice.
        if writer.is_ok() {
            guard.clients.push(Client { queue, fell_behind });
        }
    }
}

fn refuse(stream: UnixStream) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut stream = stream;
    let line = control(
        "refused",
        serde_json::json!({
            "why": format!("{MAX_CLIENTS} dashboards are already attached; close one and attach again")
        }),
    );
    let _ = writeln!(stream, "{line}");
}

fn write_client(
    stream: UnixStream,
    snapshot: Vec<Arc<str>>,
    lines: mpsc::Receiver<Arc<str>>,
    fell_behind: Arc<AtomicBool>,
) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut out = BufWriter::new(stream);
    let hello = control(
        "hello",
        serde_json::json!({ "version": STREAM_VERSION, "pid": std::process::id() }),
    );
    let send = |out: &mut BufWriter<UnixStream>, line: &str| -> bool {
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .is_ok()
    };
    if !send(&mut out, &hello) {
        return;
    }
    for line in &snapshot {
        if !send(&mut out, line) {
            return;
        }
    }
    drop(snapshot);
    if !send(&mut out, &control("live", serde_json::json!({}))) || out.flush().is_err() {
        return;
    }
    loop {
        match lines.recv_timeout(HEARTBEAT) {
            Ok(line) => {
                if !send(&mut out, &line) {
                    return;
                }
                // Batch what is already queued into one write.
                while let Ok(line) = lines.try_recv() {
                    if !send(&mut out, &line) {
                        return;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if !send(&mut out, &control("heartbeat", serde_json::json!({}))) {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if out.flush().is_err() {
            return;
        }
    }
    let last = if fell_behind.load(Ordering::SeqCst) {
        control(
            "dropped",
            serde_json::json!({
                "why": format!(
                    "this dashboard fell {CLIENT_QUEUE} events behind the station (a slow \
                     terminal or link); attach again"
                )
            }),
        )
    } else {
        control(
            "end",
            serde_json::json!({ "why": "the station ended (batch finished or stopped)" }),
        )
    };
    let _ = send(&mut out, &last);
    let _ = out.flush();
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn the_socket_lives_in_the_services_runtime_directory_or_beside_the_journal() {
        let journal = Path::new("/srv/st01/journal.sqlite");
        assert_eq!(
            default_socket(journal, None),
            Path::new("/srv/st01/journal.events.sock")
        );
        assert_eq!(
            default_socket(journal, Some("/run/flashgate".into())),
            Path::new(SERVICE_SOCKET)
        );
        assert_eq!(
            default_socket(journal, Some("/run/flashgate:/run/other".into())),
            Path::new(SERVICE_SOCKET)
        );
        assert_eq!(
            default_socket(journal, Some("".into())),
            Path::new("/srv/st01/journal.events.sock")
        );
    }
}

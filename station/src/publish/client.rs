//! The reading end of the station's event stream (`flashgate dashboard`).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{HEARTBEAT, STREAM_VERSION};
use crate::events::Event;

/// The longest line a station sends is a verdict with its sentence; anything near this is not
/// our station.
const MAX_LINE: u64 = 1 << 20;
/// Several heartbeats missed: the station hangs (or the socket is not a station's).
const READ_TIMEOUT: Duration = Duration::from_secs(HEARTBEAT.as_secs() * 4);

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(
        "no station is running: nothing listens on {tried} (start it with `systemctl start \
         flashgate` or `flashgate run`, or name its socket with --socket)"
    )]
    NoStation { tried: String },
    #[error(
        "no permission to attach to {path}: add yourself to the station's group (`sudo usermod \
         -aG flashgate $USER`, then log in again)"
    )]
    Denied { path: PathBuf },
    #[error("cannot attach to {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the station refused this dashboard: {why}")]
    Refused { why: String },
    #[error("{path} does not speak the flashgate event stream: {detail}")]
    NotAStation { path: PathBuf, detail: String },
    #[error("the station's stream broke: {0}")]
    Broken(String),
}

/// One line of the stream, as a reader acts on it.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    Event(Box<Event>),
    /// The replay is over: what follows happens now.
    Live,
    /// The station closed the stream (it ended, or dropped this reader); the sentence says why.
    End(String),
    Dropped(String),
}

pub struct EventStream {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    /// Kept to shut the socket from another thread (a key press that detaches).
    socket: UnixStream,
    station_pid: u32,
}

impl EventStream {
    /// Attaches to the first of `candidates` a station listens on.
    pub fn connect(candidates: &[PathBuf]) -> Result<Self, AttachError> {
        let mut absent = Vec::new();
        for path in candidates {
            match UnixStream::connect(path) {
                Ok(socket) => return Self::handshake(path, socket),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    return Err(AttachError::Denied { path: path.clone() })
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    absent.push(path.display().to_string())
                }
                Err(source) => {
                    return Err(AttachError::Io {
                        path: path.clone(),
                        source,
                    })
                }
            }
        }
        Err(AttachError::NoStation {
            tried: absent.join(" or "),
        })
    }

    fn handshake(path: &Path, socket: UnixStream) -> Result<Self, AttachError> {
        let io = |source| AttachError::Io {
            path: path.to_path_buf(),
            source,
        };
        socket.set_read_timeout(Some(READ_TIMEOUT)).map_err(io)?;
        let reader = BufReader::new(socket.try_clone().map_err(io)?);
        let mut stream = Self {
            path: path.to_path_buf(),
            reader,
            socket,
            station_pid: 0,
        };
        let not_a_station = |detail: String| AttachError::NotAStation {
            path: path.to_path_buf(),
            detail,
        };
        let hello = stream
            .read_line()?
            .ok_or_else(|| not_a_station("it closed without a word".into()))?;
        let hello: serde_json::Value =
            serde_json::from_str(&hello).map_err(|e| not_a_station(e.to_string()))?;
        match hello["control"].as_str() {
            Some("hello") => {}
            Some("refused") => {
                return Err(AttachError::Refused {
                    why: hello["why"]
                        .as_str()
                        .unwrap_or("no reason given")
                        .to_owned(),
                })
            }
            _ => return Err(not_a_station(format!("its first line is {hello}"))),
        }
        if hello["version"].as_u64() != Some(u64::from(STREAM_VERSION)) {
            return Err(not_a_station(format!(
                "stream version {} (this flashgate reads version {STREAM_VERSION}; use the \
                 station's own flashgate binary)",
                hello["version"]
            )));
        }
        stream.station_pid = hello["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0);
        Ok(stream)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The station's process id, as it said in its hello.
    pub fn station_pid(&self) -> u32 {
        self.station_pid
    }

    /// A handle that ends the stream from another thread: [`EventStream::next`] then returns
    /// `Ok(None)`.
    pub fn closer(&self) -> std::io::Result<UnixStream> {
        self.socket.try_clone()
    }

    fn read_line(&mut self) -> Result<Option<String>, AttachError> {
        let mut line = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    AttachError::Broken(format!(
                        "no word from the station for {} s (it hangs, or the machine is \
                         overloaded)",
                        READ_TIMEOUT.as_secs()
                    ))
                }
                _ => AttachError::Broken(e.to_string()),
            })?;
        if read == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') {
            if read as u64 >= MAX_LINE {
                return Err(AttachError::Broken(format!(
                    "a line longer than {MAX_LINE} bytes"
                )));
            }
            return Ok(None); // cut mid-line: the station went away
        }
        line.pop();
        String::from_utf8(line)
            .map(Some)
            .map_err(|_| AttachError::Broken("a line that is not UTF-8".into()))
    }

    /// The next item; `Ok(None)` when the socket closed without a last word (the station was
    /// killed, or [`EventStream::closer`] shut it).
    pub fn next_item(&mut self) -> Result<Option<StreamItem>, AttachError> {
        loop {
            let Some(line) = self.read_line()? else {
                return Ok(None);
            };
            let value: serde_json::Value = serde_json::from_str(&line)
                .map_err(|e| AttachError::Broken(format!("{e}: {line}")))?;
            let why = || value["why"].as_str().unwrap_or_default().to_owned();
            return Ok(Some(match value["control"].as_str() {
                Some("heartbeat") => continue,
                Some("live") => StreamItem::Live,
                Some("end") => StreamItem::End(why()),
                Some("dropped") => StreamItem::Dropped(why()),
                Some(other) => {
                    return Err(AttachError::Broken(format!(
                        "unknown control line `{other}`"
                    )))
                }
                None => StreamItem::Event(Box::new(
                    serde_json::from_value(value)
                        .map_err(|e| AttachError::Broken(format!("{e}: {line}")))?,
                )),
            }));
        }
    }
}

//! `flashgate dashboard` (alias `attach`): the live dashboard of the station running on this PC
//! (usually headless, as a service), drawn by the same renderer as `flashgate run`, from the
//! event stream the station publishes on its local socket. q or Ctrl-C detaches; the station
//! keeps running.

use std::io::{IsTerminal, Read};
use std::net::Shutdown;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use station::config::StationConfig;
use station::dashboard::{
    LineFormat, LineSink, OutputMode, RenderStyle, TtyDashboard, DEFAULT_REFRESH,
};
use station::events::{Event, EventSink};
use station::publish::{self, EventStream, StreamItem};

#[derive(clap::Args)]
pub struct Args {
    /// The station's event socket (default: the one beside the journal of --station, then the
    /// one beside its simulated runs' journal, then the service's /run/flashgate/events.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The station file, to find the socket beside its journal.
    #[arg(long, value_name = "FILE")]
    station: Option<PathBuf>,
    /// One JSON object per event on stdout (as `run --json`) instead of the dashboard.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let candidates = match (&args.socket, &args.station) {
        (Some(socket), _) => vec![socket.clone()],
        (None, Some(file)) => {
            let station = StationConfig::load(file)?;
            // A `run --sim` of this station publishes beside the journal of its simulated runs.
            vec![
                publish::socket_beside_journal(&station.journal),
                publish::socket_beside_journal(&station.for_simulated_phones().journal),
                PathBuf::from(publish::SERVICE_SOCKET),
            ]
        }
        (None, None) => vec![PathBuf::from(publish::SERVICE_SOCKET)],
    };
    let mut stream = EventStream::connect(&candidates)?;
    let path = stream.path().to_path_buf();
    let mode = OutputMode::detect(args.json);
    if mode == OutputMode::Tty {
        eprintln!(
            "attached to the station on {} (pid {}); q or Ctrl-C detaches, the station keeps running",
            path.display(),
            stream.station_pid()
        );
    }

    let detached = Arc::new(AtomicBool::new(false));
    // Keys only where a person types them; the terminal mode is restored when this returns.
    let _keys = if mode == OutputMode::Tty && std::io::stdin().is_terminal() {
        Some(KeyWatch::start(stream.closer()?, detached.clone()))
    } else {
        None
    };

    let (tx, rx) = mpsc::channel::<Event>();
    let consumer = match mode {
        OutputMode::Tty => {
            let dashboard = TtyDashboard::stderr(RenderStyle::detect());
            std::thread::spawn(move || {
                dashboard.run(rx, DEFAULT_REFRESH);
            })
        }
        OutputMode::Plain | OutputMode::Json => {
            let format = if mode == OutputMode::Json {
                LineFormat::Json
            } else {
                LineFormat::Plain
            };
            std::thread::spawn(move || {
                let sink = LineSink::new(format, std::io::stdout());
                for event in rx {
                    sink.emit(event);
                }
            })
        }
    };
    let ended = loop {
        match stream.next_item() {
            Ok(Some(StreamItem::Event(event))) => {
                let _ = tx.send(*event);
            }
            Ok(Some(StreamItem::Live)) => {}
            Ok(Some(StreamItem::End(why))) => break Ok(why),
            Ok(Some(StreamItem::Dropped(why))) => break Err(why),
            Ok(None) if detached.load(Ordering::SeqCst) => {
                break Ok("detached; the station keeps running".to_owned())
            }
            Ok(None) => {
                break Err(format!(
                    "the station's socket {} closed without a last word (the station was \
                     killed?)",
                    path.display()
                ))
            }
            Err(e) if detached.load(Ordering::SeqCst) => {
                let _ = e;
                break Ok("detached; the station keeps running".to_owned());
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    drop(tx);
    let _ = consumer.join();
    drop(_keys);
    match ended {
        Ok(why) => {
            eprintln!("{why}");
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("error: {why}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Reads single keys from the terminal (no line editing, no echo, Ctrl-C as a key rather than a
/// signal, output processing untouched so the dashboard draws as usual); q or Ctrl-C shuts the
/// stream's socket, which ends the reading loop.
struct KeyWatch {
    saved: Option<rustix::termios::Termios>,
}

impl KeyWatch {
    fn start(socket: std::os::unix::net::UnixStream, detached: Arc<AtomicBool>) -> Self {
        use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex};
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).ok();
        if let Some(saved) = &saved {
            let mut keys = saved.clone();
            keys.local_modes
                .remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG);
            keys.special_codes[SpecialCodeIndex::VMIN] = 1;
            keys.special_codes[SpecialCodeIndex::VTIME] = 0;
            let _ = termios::tcsetattr(&stdin, OptionalActions::Now, &keys);
        }
        let _ = std::thread::Builder::new()
            .name("keys".into())
            .spawn(move || {
                let mut byte = [0u8; 1];
                let mut stdin = std::io::stdin().lock();
                while let Ok(1) = stdin.read(&mut byte) {
                    if matches!(byte[0], b'q' | b'Q' | 0x03) {
                        detached.store(true, Ordering::SeqCst);
                        let _ = socket.shutdown(Shutdown::Both);
                        return;
                    }
                }
            });
        Self { saved }
    }
}

impl Drop for KeyWatch {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}

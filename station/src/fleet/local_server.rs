//! A throwaway PostgreSQL server in a folder of its own, on a free loopback port: what the fleet
//! tests, the fleet benchmark and `flashgate fleet local-server` start with Debian's
//! `postgresql` binaries (`initdb`, `pg_ctl`). It is stopped (immediately: nothing in it is
//! meant to last) when dropped.
//!
//! PostgreSQL refuses to run as root. Run as root (CI), the server runs as an unprivileged
//! user: `postgres` (the Debian package creates it), else `nobody`; its folder is handed to
//! that user and every server command goes through `runuser`.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The role and database the local server is created with (trust authentication on loopback).
pub const LOCAL_USER: &str = "flashgate";
pub const LOCAL_DATABASE: &str = "flashgate";

#[derive(Debug, thiserror::Error)]
pub enum LocalServerError {
    #[error("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: looked in {looked}; install Debian's `postgresql` (apt-get install postgresql) or set FLASHGATE_PG_BIN to their folder")]
    NotInstalled { looked: String },
    #[error("local PostgreSQL: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("local PostgreSQL: `{command}` failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error("local PostgreSQL: running as root, but neither a `postgres` nor a `nobody` user exists to run the server as (PostgreSQL refuses root)")]
    NoUnprivilegedUser,
    #[error("local PostgreSQL on port {port}: creating database `{LOCAL_DATABASE}`: {source}")]
    CreateDatabase {
        port: u16,
        #[source]
        source: postgres::Error,
    },
}

/// An unprivileged account to run the server as.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

/// A running (or stopped, between [`LocalPostgres::stop`] and [`LocalPostgres::start`]) server.
#[derive(Debug)]
pub struct LocalPostgres {
    /// Holds `data/` and `server.log`; removed on drop unless kept.
    root: Option<tempfile::TempDir>,
    kept_root: Option<PathBuf>,
    bin: PathBuf,
    port: u16,
    run_as: Option<RunAs>,
    running: bool,
    /// Serving TLS with `server.crt` / `server.key` in its folder.
    tls: bool,
}

impl LocalPostgres {
    /// A new server in a temporary folder under `parent` (created if missing), on a free
    /// loopback port, with the `flashgate` role and database. Takes a second or two.
    pub fn start_in(parent: &Path) -> Result<Self, LocalServerError> {
        let bin = find_bin_dir()?;
        std::fs::create_dir_all(parent).map_err(|source| LocalServerError::Io {
            what: format!("creating {}", parent.display()),
            source,
        })?;
        let root = tempfile::Builder::new()
            .prefix("fleet-pg.")
            .tempdir_in(parent)
            .map_err(|source| LocalServerError::Io {
                what: format!("creating a folder in {}", parent.display()),
                source,
            })?;
        let run_as = if is_root() {
            Some(unprivileged_user()?)
        } else {
            None
        };
        if let Some(user) = &run_as {
            // The server's user must reach and own its folder (a temporary folder is 0700).
            std::os::unix::fs::chown(root.path(), Some(user.uid), Some(user.gid)).map_err(
                |source| LocalServerError::Io {
                    what: format!("handing {} to user {}", root.path().display(), user.name),
                    source,
                },
            )?;
            ensure_traversable(root.path());
        }
        let mut server = LocalPostgres {
            root: Some(root),
            kept_root: None,
            bin,
            port: free_loopback_port()?,
            run_as,
            running: false,
            tls: false,
        };
        let data = server.data_dir();
        server.run(
            "initdb",
            &[
                "-D".into(),
                data.into_os_string(),
                "-U".into(),
                LOCAL_USER.into(),
                "--auth=trust".into(),
                "-E".into(),
                "UTF8".into(),
                "--no-sync".into(),
                "--no-instructions".into(),
            ],
        )?;
        server.start()?;
        server.create_database()?;
        Ok(server)
    }

    /// Keeps the server's folder when this value is dropped (the server is still stopped):
    /// for `flashgate fleet local-server`, whose data outlives one command.
    pub fn root(&self) -> &Path {
        match (&self.root, &self.kept_root) {
            (Some(dir), _) => dir.path(),
            (None, Some(dir)) => dir,
            (None, None) => Path::new("."),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL to the server's `flashgate` database (no password: trust on loopback).
    pub fn url(&self) -> String {
        format!(
            "postgres://{LOCAL_USER}@127.0.0.1:{}/{LOCAL_DATABASE}",
            self.port
        )
    }

    pub fn log_file(&self) -> PathBuf {
        self.root().join("server.log")
    }

    fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    /// Starts the server (again, after [`LocalPostgres::stop`]) on the same port, and waits
    /// until it accepts connections.
    pub fn start(&mut self) -> Result<(), LocalServerError> {
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off \
             -c synchronous_commit=on -c max_connections=200",
            self.port
        );
        if self.tls {
            let root = self.root().display().to_string();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={root}/server.crt -c ssl_key_file={root}/server.key"
            ));
        }
        self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data_dir().into_os_string(),
                "-l".into(),
                self.log_file().into_os_string(),
                "-o".into(),
                options.into(),
                "-w".into(),
                "-t".into(),
                "60".into(),
                "start".into(),
            ],
        )?;
        self.running = true;
        Ok(())
    }

    /// Serves TLS from now on with this certificate (chain) and key, both PEM (restarts the
    /// server).
    pub fn enable_tls(&mut self, cert: &Path, key: &Path) -> Result<(), LocalServerError> {
        for (from, name, mode) in [(cert, "server.crt", 0o644), (key, "server.key", 0o600)] {
            let to = self.root().join(name);
            let io = |what: &str, source| LocalServerError::Io {
                what: format!("{what} {}", to.display()),
                source,
            };
            std::fs::copy(from, &to).map_err(|e| io("copying to", e))?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
                .map_err(|e| io("setting the mode of", e))?;
            if let Some(user) = &self.run_as {
                std::os::unix::fs::chown(&to, Some(user.uid), Some(user.gid))
                    .map_err(|e| io("handing over", e))?;
            }
        }
        self.stop()?;
        self.tls = true;
        self.start()
    }

    /// Stops the server at once (as a crash would: clients see their connections cut).
    pub fn stop(&mut self) -> Result<(), LocalServerError> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data_dir().into_os_string(),
                "-m".into(),
                "immediate".into(),
                "-w".into(),
                "stop".into(),
            ],
        )
    }

    fn create_database(&self) -> Result<(), LocalServerError> {
        let error = |source| LocalServerError::CreateDatabase {
            port: self.port,
            source,
        };
        let mut client = postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user(LOCAL_USER)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(10))
            .connect(postgres::NoTls)
            .map_err(error)?;
        client
            .batch_execute(&format!("CREATE DATABASE {LOCAL_DATABASE}"))
            .map_err(error)
    }

    /// Runs one of the server's programs, as the unprivileged user when we are root.
    fn run(&self, program: &str, args: &[OsString]) -> Result<(), LocalServerError> {
        let path = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(&user.name).arg("--").arg(&path);
                c
            }
            None => Command::new(&path),
        };
        command.args(args).current_dir(self.root());
        // `pg_ctl start` leaves the server running with our stdout and stderr unless they are
        // files: a pipe would stay open as long as the server runs.
        let output_file = self.root().join(format!("{program}.out"));
        let out = std::fs::File::create(&output_file).map_err(|source| LocalServerError::Io {
            what: format!("creating {}", output_file.display()),
            source,
        })?;
        let err = out.try_clone().map_err(|source| LocalServerError::Io {
            what: format!("opening {}", output_file.display()),
            source,
        })?;
        let status = command
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|source| LocalServerError::Io {
                what: format!("running {}", path.display()),
                source,
            })?;
        if status.success() {
            return Ok(());
        }
        let mut output = std::fs::read_to_string(&output_file).unwrap_or_default();
        if program == "pg_ctl" {
            output.push_str(&std::fs::read_to_string(self.log_file()).unwrap_or_default());
        }
        Err(LocalServerError::Command {
            command: format!("{program} {}", display_args(args)),
            status: status.to_string(),
            output: output.trim().to_string(),
        })
    }

    /// Stops the server and keeps its folder; returns where it is.
    pub fn stop_and_keep(mut self) -> Result<PathBuf, LocalServerError> {
        self.stop()?;
        let dir = self.root.take().map(tempfile::TempDir::keep);
        Ok(dir.unwrap_or_default())
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: {e}");
        }
    }
}

fn display_args(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `FLASHGATE_PG_BIN`, else the newest `/usr/lib/postgresql/<major>/bin` (Debian's layout).
fn find_bin_dir() -> Result<PathBuf, LocalServerError> {
    if let Some(dir) = std::env::var_os("FLASHGATE_PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
        return Err(LocalServerError::NotInstalled {
            looked: dir.display().to_string(),
        });
    }
    let base = Path::new("/usr/lib/postgresql");
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    majors.sort();
    majors
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| LocalServerError::NotInstalled {
            looked: format!("{}/*/bin", base.display()),
        })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `postgres` (Debian's package makes it), else `nobody`, from /etc/passwd.
fn unprivileged_user() -> Result<RunAs, LocalServerError> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for wanted in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 4 || fields[0] != wanted {
                continue;
            }
            if let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse()) {
                return Ok(RunAs {
                    name: wanted.to_string(),
                    uid,
                    gid,
                });
            }
        }
    }
    Err(LocalServerError::NoUnprivilegedUser)
}

/// Every folder above `dir` must let others through (x) for the server's user to reach it. A
/// folder that does not is left alone: the server's start then fails with its own message.
fn ensure_traversable(dir: &Path) {
    for ancestor in dir.ancestors().skip(1) {
        if let Ok(meta) = std::fs::metadata(ancestor) {
            if meta.permissions().mode() & 0o001 == 0 {
                tracing::warn!(
                    folder = %ancestor.display(),
                    "the local PostgreSQL server's user cannot pass through this folder"
                );
            }
        }
    }
}

/// A loopback port nobody listens on now (the OS picks it; a tiny race remains until the server
/// binds it).
fn free_loopback_port() -> Result<u16, LocalServerError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| LocalServerError::Io {
            what: "finding a free loopback port".into(),
            source,
        })?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|source| LocalServerError::Io {
            what: "finding a free loopback port".into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_stops_and_restarts() {
        let parent = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fleet-tests");
        let parent = parent.as_path();
        let mut server = LocalPostgres::start_in(parent).expect("local PostgreSQL starts");
        let query = |url: &str| -> Result<i32, postgres::Error> {
            let mut client = postgres::Client::connect(url, postgres::NoTls)?;
            Ok(client.query_one("SELECT 40 + 2", &[])?.get(0))
        };
        assert_eq!(query(&server.url()).unwrap(), 42);
        server.stop().unwrap();
        assert!(query(&server.url()).is_err(), "a stopped server answers");
        server.start().unwrap();
        assert_eq!(query(&server.url()).unwrap(), 42);
        let root = server.root().to_path_buf();
        drop(server);
        assert!(!root.exists(), "the server's folder is removed on drop");
    }
}

//! A pseudo-terminal pair for serving a simulated EDL phone to a host that opens it as a serial
//! port, exactly like the QDLoader tty of a real phone (`/dev/ttyUSB0`).
//!
//! The simulator keeps the master side as a [`Transport`] ([`Framing::Stream`]); the host opens
//! the slave side with [`super::serial::SerialLink::open`], through a stable symlink if one was
//! asked for. The slave is put in raw mode here (no echo, no line editing, no CR/LF mapping)
//! before any host opens it, because Sahara and Firehose bytes must pass untouched.
//! Every system call goes through rustix's safe wrappers.

#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{fcntl_getfl, fcntl_setfl, Mode, OFlags};
use rustix::io::Errno;
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcgetattr, tcsetattr, OptionalActions};

use super::{Framing, Transport, TransportError};

/// The device end of a pty: what a simulated phone reads from and writes to.
pub struct PtyDevice {
    master: OwnedFd,
    /// Held open so the master never sees a hang-up while no host has the port open (a host
    /// may close and reopen the port between `edl info` and `edl flash`).
    _slave: OwnedFd,
    slave_path: PathBuf,
    link_path: Option<PathBuf>,
    name: String,
}

fn os_error(what: &str, errno: Errno) -> TransportError {
    let e = std::io::Error::from(errno);
    TransportError::Io(std::io::Error::new(e.kind(), format!("{what}: {e}")))
}

impl PtyDevice {
    /// Create a pty; with `link`, also a symlink at that path pointing at the slave (an
    /// existing symlink there is replaced, any other file is an error).
    pub fn create(link: Option<&Path>) -> Result<PtyDevice, TransportError> {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(|e| os_error("opening /dev/ptmx", e))?;
        grantpt(&master)
            .and_then(|()| unlockpt(&master))
            .map_err(|e| os_error("grantpt/unlockpt", e))?;
        let slave_name = ptsname(&master, Vec::new()).map_err(|e| os_error("ptsname", e))?;
        let slave_path = PathBuf::from(OsStr::from_bytes(slave_name.as_bytes()));
        let slave = rustix::fs::open(
            slave_name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| os_error("open pty slave", e))?;
        make_raw(&slave)?;
        // Non-blocking master: reads and writes wait in poll() with the caller's timeout.
        fcntl_getfl(&master)
            .and_then(|flags| fcntl_setfl(&master, flags | OFlags::NONBLOCK))
            .map_err(|e| os_error("fcntl O_NONBLOCK", e))?;
        let link_path = match link {
            Some(path) => {
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    if !meta.file_type().is_symlink() {
                        return Err(TransportError::Io(std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            format!("{} exists and is not a symlink", path.display()),
                        )));
                    }
                    std::fs::remove_file(path)?;
                }
                std::os::unix::fs::symlink(&slave_path, path).map_err(|e| {
                    TransportError::Io(std::io::Error::new(
                        e.kind(),
                        format!("cannot create symlink {}: {e}", path.display()),
                    ))
                })?;
                Some(path.to_path_buf())
            }
            None => None,
        };
        let name = format!(
            "pty:{}",
            link_path.as_deref().unwrap_or(&slave_path).display()
        );
        Ok(PtyDevice {
            master,
            _slave: slave,
            slave_path,
            link_path,
            name,
        })
    }

    /// The path a host opens: the symlink if there is one, else `/dev/pts/N`.
    pub fn path(&self) -> &Path {
        self.link_path.as_deref().unwrap_or(&self.slave_path)
    }

    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// Wait until the master is readable (`IN`) or writable (`OUT`).
    fn wait(
        &self,
        events: PollFlags,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(&self.master, events)];
            // A Duration past Timespec's range (centuries) waits without a limit.
            let limit = Timespec::try_from(left).ok();
            let n = match poll(&mut fds, limit.as_ref()) {
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(TransportError::Io(e.into())),
            };
            if n > 0 {
                if fds[0]
                    .revents()
                    .intersects(PollFlags::ERR | PollFlags::NVAL)
                {
                    return Err(TransportError::Disconnected);
                }
                return Ok(());
            }
            if left.is_zero() {
                return Err(TransportError::Timeout(timeout));
            }
        }
    }
}

/// cfmakeraw on the slave.
fn make_raw(slave: &OwnedFd) -> Result<(), TransportError> {
    let mut termios = tcgetattr(slave).map_err(|e| os_error("tcgetattr", e))?;
    termios.make_raw();
    tcsetattr(slave, OptionalActions::Now, &termios).map_err(|e| os_error("tcsetattr", e))
}

/// A failed read or write on the master: `EIO` is how a pty master says the slave went away.
fn io_failure(errno: Errno) -> TransportError {
    if errno == Errno::IO {
        TransportError::Disconnected
    } else {
        TransportError::Io(errno.into())
    }
}

impl Transport for PtyDevice {
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        let deadline = Instant::now() + timeout;
        let mut sent = 0;
        while sent < data.len() {
            match rustix::io::write(&self.master, &data[sent..]) {
                Ok(n) if n > 0 => sent += n,
                Ok(_) | Err(Errno::AGAIN | Errno::INTR) => {
                    self.wait(PollFlags::OUT, deadline, timeout)?
                }
                Err(e) => return Err(io_failure(e)),
            }
        }
        Ok(())
    }

    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match rustix::io::read(&self.master, &mut *buf) {
                Ok(0) => return Err(TransportError::Disconnected),
                Ok(n) => return Ok(n),
                Err(Errno::AGAIN | Errno::INTR) => self.wait(PollFlags::IN, deadline, timeout)?,
                Err(e) => return Err(io_failure(e)),
            }
        }
    }

    fn framing(&self) -> Framing {
        Framing::Stream
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

impl Drop for PtyDevice {
    fn drop(&mut self) {
        // Remove our symlink only if it still points at our slave (someone may have replaced it).
        if let Some(link) = &self.link_path {
            if std::fs::read_link(link).ok().as_deref() == Some(self.slave_path.as_path()) {
                let _ = std::fs::remove_file(link);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::serial::SerialLink;

    const T: Duration = Duration::from_secs(2);

    #[test]
    fn bytes_pass_untouched_both_ways_through_the_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("ttyEDL");
        let mut dev = PtyDevice::create(Some(&link)).unwrap();
        assert_eq!(dev.path(), link.as_path());
        assert!(dev.describe().contains("ttyEDL"));
        let mut host = SerialLink::open(link.to_str().unwrap()).unwrap();
        // Every byte value, including CR, LF, ^C, ^D, ^S, DEL: raw mode must not touch them.
        let all: Vec<u8> = (0..=255u8).collect();
        dev.write(&all, T).unwrap();
        let mut got = vec![0u8; 256];
        crate::transport::read_exact(&mut host, &mut got, T).unwrap();
        assert_eq!(got, all);
        host.write(&all, T).unwrap();
        let mut got = vec![0u8; 256];
        crate::transport::read_exact(&mut dev, &mut got, T).unwrap();
        assert_eq!(got, all);
    }

    #[test]
    fn reads_time_out_and_the_symlink_goes_with_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("ttyEDL");
        let mut dev = PtyDevice::create(Some(&link)).unwrap();
        let mut buf = [0u8; 8];
        assert!(matches!(
            dev.read_packet(&mut buf, Duration::from_millis(50)),
            Err(TransportError::Timeout(_))
        ));
        drop(dev);
        assert!(std::fs::symlink_metadata(&link).is_err());
    }

    #[test]
    fn a_regular_file_at_the_link_path_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("precious");
        std::fs::write(&path, b"keep").unwrap();
        assert!(PtyDevice::create(Some(&path)).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }

    #[test]
    fn large_writes_flow_while_the_host_reads() {
        let mut dev = PtyDevice::create(None).unwrap();
        let path = dev.path().to_str().unwrap().to_string();
        let reader = std::thread::spawn(move || {
            let mut host = SerialLink::open(&path).unwrap();
            let mut got = vec![0u8; 1 << 20];
            crate::transport::read_exact(&mut host, &mut got, T).unwrap();
            got
        });
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
        // The host may not have opened the port yet; the pty buffers what fits meanwhile.
        dev.write(&data, Duration::from_secs(10)).unwrap();
        assert_eq!(reader.join().unwrap(), data);
    }
}

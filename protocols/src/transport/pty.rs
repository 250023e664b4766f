//! A pseudo-terminal pair for serving a simulated EDL phone to a host that opens it as a serial
//! port, exactly like the QDLoader tty of a real phone (`/dev/ttyUSB0`).
//!
//! The simulator keeps the master side as a [`Transport`] ([`Framing::Stream`]); the host opens
//! the slave side with [`super::serial::SerialLink::open`], through a stable symlink if one was
//! asked for. The slave is put in raw mode here (no echo, no line editing, no CR/LF mapping)
//! before any host opens it, because Sahara and Firehose bytes must pass untouched.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

fn os_error(what: &str) -> TransportError {
    let e = std::io::Error::last_os_error();
    TransportError::Io(std::io::Error::new(e.kind(), format!("{what}: {e}")))
}

impl PtyDevice {
    /// Create a pty; with `link`, also a symlink at that path pointing at the slave (an
    /// existing symlink there is replaced, any other file is an error).
    pub fn create(link: Option<&Path>) -> Result<PtyDevice, TransportError> {
        // SAFETY: plain libc calls on descriptors we own; every return value is checked.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        if master < 0 {
            return Err(os_error("posix_openpt"));
        }
        // SAFETY: `master` is a fresh descriptor owned by nothing else.
        let master = unsafe { OwnedFd::from_raw_fd(master) };
        let fd = master.as_raw_fd();
        // SAFETY: fd is a valid pty master.
        if unsafe { libc::grantpt(fd) } != 0 || unsafe { libc::unlockpt(fd) } != 0 {
            return Err(os_error("grantpt/unlockpt"));
        }
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: the buffer is valid for its length; ptsname_r NUL-terminates on success.
        if unsafe { libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) } != 0 {
            return Err(os_error("ptsname_r"));
        }
        // SAFETY: NUL-terminated by ptsname_r.
        let slave_path = PathBuf::from(
            unsafe { CStr::from_ptr(name.as_ptr()) }
                .to_string_lossy()
                .into_owned(),
        );
        // SAFETY: `name` is the NUL-terminated slave path.
        let slave = unsafe {
            libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if slave < 0 {
            return Err(os_error("open pty slave"));
        }
        // SAFETY: fresh descriptor.
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        make_raw(slave.as_raw_fd())?;
        // Non-blocking master: reads and writes wait in poll() with the caller's timeout.
        // SAFETY: valid descriptor, standard fcntl flags.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                return Err(os_error("fcntl O_NONBLOCK"));
            }
        }
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

    /// Wait until the master is readable (`POLLIN`) or writable (`POLLOUT`).
    fn wait(
        &self,
        events: libc::c_short,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events,
                revents: 0,
            };
            let ms = left.as_millis().min(i32::MAX as u128) as libc::c_int;
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(TransportError::Io(e));
            }
            if n > 0 {
                if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
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
fn make_raw(fd: libc::c_int) -> Result<(), TransportError> {
    // SAFETY: termios is plain data; tcgetattr fills it before use.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return Err(os_error("tcgetattr"));
        }
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
            return Err(os_error("tcsetattr"));
        }
    }
    Ok(())
}

fn would_block(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

impl Transport for PtyDevice {
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        let deadline = Instant::now() + timeout;
        let mut sent = 0;
        while sent < data.len() {
            let rest = &data[sent..];
            // SAFETY: the pointer and length describe `rest`.
            let n =
                unsafe { libc::write(self.master.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                sent += n as usize;
                continue;
            }
            let e = std::io::Error::last_os_error();
            if n < 0 && !would_block(&e) {
                return Err(if e.raw_os_error() == Some(libc::EIO) {
                    TransportError::Disconnected
                } else {
                    TransportError::Io(e)
                });
            }
            self.wait(libc::POLLOUT, deadline, timeout)?;
        }
        Ok(())
    }

    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = Instant::now() + timeout;
        loop {
            // SAFETY: the pointer and length describe `buf`.
            let n =
                unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                return Ok(n as usize);
            }
            if n == 0 {
                return Err(TransportError::Disconnected);
            }
            let e = std::io::Error::last_os_error();
            if !would_block(&e) {
                return Err(if e.raw_os_error() == Some(libc::EIO) {
                    TransportError::Disconnected
                } else {
                    TransportError::Io(e)
                });
            }
            self.wait(libc::POLLIN, deadline, timeout)?;
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

//! Linux native AIO (`io_submit`/`io_getevents`/`io_cancel`) on FunctionFS endpoint files.
//!
//! FunctionFS endpoint files implement neither `poll` nor a read timeout: a plain `read` blocks
//! until the host sends a transfer, and `O_NONBLOCK` only covers the wait for the endpoint to
//! be enabled. Asynchronous I/O is the interface the kernel offers for bounded waits (adbd uses
//! it too): the request is queued on the UDC, `io_getevents` waits with a timeout, and
//! `io_cancel` dequeues a request that did not complete in time.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;

/// `struct iocb` from `include/uapi/linux/aio_abi.h` (64 bytes).
#[repr(C)]
#[derive(Default)]
struct Iocb {
    aio_data: u64,
    #[cfg(target_endian = "little")]
    aio_key: u32,
    #[cfg(target_endian = "little")]
    aio_rw_flags: i32,
    #[cfg(target_endian = "big")]
    aio_rw_flags: i32,
    #[cfg(target_endian = "big")]
    aio_key: u32,
    aio_lio_opcode: u16,
    aio_reqprio: i16,
    aio_fildes: u32,
    aio_buf: u64,
    aio_nbytes: u64,
    aio_offset: i64,
    aio_reserved2: u64,
    aio_flags: u32,
    aio_resfd: u32,
}

/// `struct io_event`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

/// How one asynchronous transfer ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Completion {
    /// Bytes transferred.
    Done(usize),
    /// The kernel's error for the request (negative errno made positive), e.g. `ESHUTDOWN`
    /// when the function was disabled while it was queued.
    Failed(i32),
    /// Nothing completed within the timeout; the request was cancelled and reaped.
    TimedOut,
}

/// One AIO context serving one endpoint, one transfer at a time.
pub struct AioContext {
    ctx: libc::c_ulong,
    /// Set when a cancelled request could not be reaped: the kernel may still write into the
    /// buffer it was given, so that buffer must never be freed or reused.
    poisoned: bool,
}

// The context is a kernel handle; nothing in it is tied to the thread that created it.
unsafe impl Send for AioContext {}

/// A request queued by [`AioContext::submit_read`]; its iocb must live until it is reaped.
pub struct Submitted {
    _iocb: Box<Iocb>,
}

// The iocb is plain data the kernel reads at submission and by address on cancel.
unsafe impl Send for Submitted {}

/// How long to wait for a cancelled request to come back before giving up on it.
const CANCEL_REAP_LIMIT: Duration = Duration::from_secs(5);

impl AioContext {
    pub fn new() -> io::Result<Self> {
        let mut ctx: libc::c_ulong = 0;
        // SAFETY: io_setup writes one aio_context_t to the pointer we pass.
        let r = unsafe { libc::syscall(libc::SYS_io_setup, 4 as libc::c_long, &mut ctx) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(AioContext {
            ctx,
            poisoned: false,
        })
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Write `data` to `fd` as one transfer. FunctionFS copies write data into a kernel buffer
    /// at submission, so `data` is free again as soon as this returns.
    pub fn write(&mut self, fd: RawFd, data: &[u8], timeout: Duration) -> io::Result<Completion> {
        self.transfer(
            fd,
            IOCB_CMD_PWRITE,
            data.as_ptr() as u64,
            data.len(),
            timeout,
        )
    }

    fn transfer(
        &mut self,
        fd: RawFd,
        opcode: u16,
        buf: u64,
        len: usize,
        timeout: Duration,
    ) -> io::Result<Completion> {
        if self.poisoned {
            return Err(io::Error::other(
                "an earlier cancelled USB request never completed; reopen the function",
            ));
        }
        // The iocb stays at this address until the request is reaped: io_cancel finds the
        // request by it.
        let mut iocb = Iocb {
            aio_lio_opcode: opcode,
            aio_fildes: fd as u32,
            aio_buf: buf,
            aio_nbytes: len as u64,
            ..Iocb::default()
        };
        let mut list = [&mut iocb as *mut Iocb];
        // SAFETY: one valid iocb pointer; the buffer it names outlives the request (see read()).
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_submit,
                self.ctx,
                1 as libc::c_long,
                list.as_mut_ptr(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Ok(Completion::Failed(e.raw_os_error().unwrap_or(libc::EIO)));
        }
        if let Some(event) = self.wait_event(timeout)? {
            return Ok(completion_of(&event));
        }
        let mut ignored = IoEvent::default();
        // SAFETY: the iocb is the one submitted above and still in place.
        unsafe {
            libc::syscall(
                libc::SYS_io_cancel,
                self.ctx,
                &mut iocb as *mut Iocb,
                &mut ignored,
            );
        }
        // Since Linux 4.19 a cancelled request's completion is always delivered to the ring;
        // it may also have completed with data just before the cancel, which we then keep.
        match self.wait_event(CANCEL_REAP_LIMIT)? {
            Some(event) => match completion_of(&event) {
                Completion::Done(n) if n > 0 => Ok(Completion::Done(n)),
                _ => Ok(Completion::TimedOut),
            },
            None => {
                self.poisoned = true;
                Err(io::Error::other(
                    "a timed-out USB request could not be cancelled",
                ))
            }
        }
    }

    /// Queue a read of `len` bytes into `buf` and return at once; [`AioContext::wait`] reaps
    /// it. The request stays queued across timeouts, so nothing the host sends is lost.
    ///
    /// # Safety
    /// `buf` must stay valid for `len` bytes until the request is reaped by `wait` or the
    /// context is dropped (io_destroy cancels and waits for it).
    pub unsafe fn submit_read(
        &mut self,
        fd: RawFd,
        buf: *mut u8,
        len: usize,
    ) -> io::Result<Submitted> {
        let mut iocb = Box::new(Iocb {
            aio_lio_opcode: IOCB_CMD_PREAD,
            aio_fildes: fd as u32,
            aio_buf: buf as u64,
            aio_nbytes: len as u64,
            ..Iocb::default()
        });
        let mut list = [&mut *iocb as *mut Iocb];
        // SAFETY: one valid iocb, kept alive in the returned Submitted until reaped.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_submit,
                self.ctx,
                1 as libc::c_long,
                list.as_mut_ptr(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Submitted { _iocb: iocb })
    }

    /// Reap the completion of the one queued request, waiting up to `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<Option<Completion>> {
        Ok(self.wait_event(timeout)?.map(|e| completion_of(&e)))
    }

    fn wait_event(&mut self, timeout: Duration) -> io::Result<Option<IoEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            };
            let mut event = IoEvent::default();
            // SAFETY: room for exactly one event; ts is a valid timespec.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_io_getevents,
                    self.ctx,
                    1 as libc::c_long,
                    1 as libc::c_long,
                    &mut event,
                    &ts,
                )
            };
            if r == 1 {
                return Ok(Some(event));
            }
            if r == 0 {
                return Ok(None);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            if left.is_zero() {
                return Ok(None);
            }
        }
    }
}

fn completion_of(event: &IoEvent) -> Completion {
    if event.res >= 0 {
        Completion::Done(event.res as usize)
    } else {
        Completion::Failed(i32::try_from(-event.res).unwrap_or(libc::EIO))
    }
}

impl Drop for AioContext {
    fn drop(&mut self) {
        if self.poisoned {
            // io_destroy would block on the request that never completed.
            return;
        }
        // SAFETY: the context is ours; no request is in flight (every transfer is reaped).
        unsafe {
            libc::syscall(libc::SYS_io_destroy, self.ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn iocb_and_event_have_the_kernel_abi_sizes() {
        assert_eq!(std::mem::size_of::<Iocb>(), 64);
        assert_eq!(std::mem::size_of::<IoEvent>(), 32);
    }

    /// A regular file has no real async I/O, so the kernel completes requests at submission;
    /// this checks submission, reaping and errors without FunctionFS.
    #[test]
    fn reads_and_writes_complete_through_the_ring() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let mut ctx = AioContext::new().unwrap();
        let t = Duration::from_secs(2);
        assert_eq!(
            ctx.write(file.as_raw_fd(), b"hello", t).unwrap(),
            Completion::Done(5)
        );
        let mut buf = [0u8; 16];
        // SAFETY: `buf` outlives the request, which is reaped before the next line.
        let queued = unsafe { ctx.submit_read(file.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
        let _queued = queued.unwrap();
        assert_eq!(ctx.wait(t).unwrap(), Some(Completion::Done(5)));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(ctx.wait(Duration::from_millis(10)).unwrap(), None);
        assert_eq!(
            ctx.write(-1, b"x", t).unwrap(),
            Completion::Failed(libc::EBADF)
        );
    }
}

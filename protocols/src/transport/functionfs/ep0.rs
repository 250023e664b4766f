//! The control endpoint of a FunctionFS function: the kernel reports bind, enable, disable,
//! suspend and control requests there as 12-byte `struct usb_functionfs_event` records. One
//! thread reads them and keeps [`BusState`], which the bulk endpoints consult to tell "the host
//! went away" from "the host is slow".

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// `enum usb_functionfs_event_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ep0Event {
    Bind,
    Unbind,
    Enable,
    Disable,
    /// A control request addressed to our interface or endpoints: (bRequestType, bRequest,
    /// wValue, wIndex, wLength).
    Setup {
        request_type: u8,
        request: u8,
        value: u16,
        index: u16,
        length: u16,
    },
    Suspend,
    Resume,
    Unknown(u8),
}

/// Size of `struct usb_functionfs_event`: an 8-byte setup packet, the type, 3 bytes of padding.
pub const EVENT_SIZE: usize = 12;

impl Ep0Event {
    pub fn parse(raw: &[u8; EVENT_SIZE]) -> Ep0Event {
        match raw[8] {
            0 => Ep0Event::Bind,
            1 => Ep0Event::Unbind,
            2 => Ep0Event::Enable,
            3 => Ep0Event::Disable,
            4 => Ep0Event::Setup {
                request_type: raw[0],
                request: raw[1],
                value: u16::from_le_bytes([raw[2], raw[3]]),
                index: u16::from_le_bytes([raw[4], raw[5]]),
                length: u16::from_le_bytes([raw[6], raw[7]]),
            },
            5 => Ep0Event::Suspend,
            6 => Ep0Event::Resume,
            other => Ep0Event::Unknown(other),
        }
    }
}

/// What the host has done to the function so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusState {
    /// The gadget is bound to a UDC.
    pub bound: bool,
    /// The host configured us: the bulk endpoints are live.
    pub enabled: bool,
    pub suspended: bool,
    /// Counts ENABLE events: a link made for one enablement is dead after the next DISABLE,
    /// even if the host enables the function again (a re-enumeration is a new session).
    pub sessions: u64,
    /// Control requests we refused (stalled), for diagnostics.
    pub stalled_requests: u64,
    /// The control endpoint failed (the gadget is being torn down).
    pub ep0_closed: bool,
}

#[derive(Default)]
pub struct Shared {
    state: Mutex<BusState>,
    changed: Condvar,
    pub stop: AtomicBool,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, BusState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait until `done(state)` holds or `timeout` passes; returns the state seen last.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&BusState) -> bool) -> BusState {
        let deadline = Instant::now() + timeout;
        let mut state = self.state();
        while !done(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.clone()
    }

    fn apply(&self, event: Ep0Event) {
        let mut s = self.state();
        match event {
            Ep0Event::Bind => s.bound = true,
            Ep0Event::Unbind => {
                s.bound = false;
                s.enabled = false;
            }
            Ep0Event::Enable => {
                s.enabled = true;
                s.suspended = false;
                s.sessions += 1;
            }
            Ep0Event::Disable => s.enabled = false,
            Ep0Event::Suspend => s.suspended = true,
            Ep0Event::Resume => s.suspended = false,
            Ep0Event::Setup { .. } => s.stalled_requests += 1,
            Ep0Event::Unknown(_) => {}
        }
        drop(s);
        self.changed.notify_all();
    }

    fn mark_closed(&self) {
        let mut s = self.state();
        s.ep0_closed = true;
        s.enabled = false;
        drop(s);
        self.changed.notify_all();
    }
}

/// Refuse a control request by stalling ep0. FunctionFS stalls when the data stage is driven in
/// the wrong direction: a read for a device-to-host request, a write for host-to-device.
fn stall(ep0: &mut File, request_type: u8) {
    let mut byte = [0u8; 1];
    let _ = if request_type & 0x80 != 0 {
        ep0.read(&mut byte).map(|_| ())
    } else {
        ep0.write(&byte).map(|_| ())
    };
}

/// Read events until `shared.stop` is set or ep0 fails. `poll` works on ep0 (unlike the bulk
/// endpoint files), so the loop can notice `stop` within `POLL_SLICE`.
pub fn run(mut ep0: File, shared: Arc<Shared>, mut on_event: impl FnMut(Ep0Event)) {
    const POLL_SLICE: i32 = 200;
    let mut buf = [0u8; EVENT_SIZE * 4];
    while !shared.stop.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: ep0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, POLL_SLICE) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if r == 0 || pfd.revents & libc::POLLIN == 0 {
            continue;
        }
        let n = match ep0.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIDRM: a control request was cancelled by a newer one; read again.
            Err(e) if e.raw_os_error() == Some(libc::EIDRM) => continue,
            Err(_) => break,
        };
        for raw in buf[..n].chunks_exact(EVENT_SIZE) {
            let mut record = [0u8; EVENT_SIZE];
            record.copy_from_slice(raw);
            let event = Ep0Event::parse(&record);
            if let Ep0Event::Setup { request_type, .. } = event {
                // We define no class or vendor requests (fastboot and EDL have none).
                stall(&mut ep0, request_type);
            }
            shared.apply(event);
            on_event(event);
        }
    }
    shared.mark_closed();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_from_the_kernel_record() {
        let mut raw = [0u8; EVENT_SIZE];
        raw[8] = 2;
        assert_eq!(Ep0Event::parse(&raw), Ep0Event::Enable);
        raw[8] = 1;
        assert_eq!(Ep0Event::parse(&raw), Ep0Event::Unbind);
        // GET_STATUS-like IN request to interface 0, 2 bytes.
        let raw = [0x81, 0x00, 0x34, 0x12, 0x00, 0x00, 0x02, 0x00, 4, 0, 0, 0];
        assert_eq!(
            Ep0Event::parse(&raw),
            Ep0Event::Setup {
                request_type: 0x81,
                request: 0,
                value: 0x1234,
                index: 0,
                length: 2
            }
        );
        let mut raw = [0u8; EVENT_SIZE];
        raw[8] = 9;
        assert_eq!(Ep0Event::parse(&raw), Ep0Event::Unknown(9));
    }

    #[test]
    fn sessions_count_enables_and_disable_ends_one() {
        let shared = Shared::default();
        shared.apply(Ep0Event::Bind);
        shared.apply(Ep0Event::Enable);
        assert!(shared.state().enabled);
        assert_eq!(shared.state().sessions, 1);
        shared.apply(Ep0Event::Disable);
        assert!(!shared.state().enabled);
        shared.apply(Ep0Event::Enable);
        assert_eq!(shared.state().sessions, 2);
        shared.apply(Ep0Event::Unbind);
        let s = shared.wait_for(Duration::from_millis(10), |s| s.enabled);
        assert!(!s.enabled && !s.bound);
    }
}

//! The DEVICE end of a USB link on Linux FunctionFS: a userspace USB function whose bulk
//! endpoints serve any [`crate::transport::Transport`]-speaking device logic (the simulated
//! phones), so the host side runs the real libusb path against them through a real kernel USB
//! stack (a `dummy_hcd` virtual bus in a VM, or a board with a device controller).
//!
//! Life of a function:
//! 1. `mount -t functionfs NAME DIR` (done by the set-up script, with the gadget in configfs);
//! 2. [`Function::start`] writes descriptors and strings to `DIR/ep0` ([`descriptors`]) and
//!    starts a thread that reads ep0 events (bind, enable, disable, suspend, control requests,
//!    which we stall);
//! 3. the gadget is bound to a UDC ([`gadget::Gadget::bind`], or `echo UDC > …/UDC`);
//! 4. each time the host enables the function, [`Function::wait_link`] hands out a fresh
//!    [`FunctionFsLink`] for that session; a DISABLE or UNBIND ends it
//!    ([`TransportError::Disconnected`] on every call, including ones in flight).
//!
//! Closing ep0 (dropping the [`Function`]) removes the function: the kernel unbinds the gadget.

mod aio;
pub mod descriptors;
pub mod ep0;
pub mod gadget;
mod link;
pub mod personality;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use descriptors::{FunctionDescriptors, InterfaceClass};
pub use ep0::{BusState, Ep0Event};
pub use gadget::{DeviceIdentity, Gadget};
pub use link::{FunctionFsLink, MAX_REQUEST};
pub use personality::Personality;

use super::TransportError;

/// Why a function could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum FunctionFsError {
    #[error("cannot open {path}: {source} (is a functionfs instance mounted there?)")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the kernel refused the {what} written to {path}: {source}")]
    Refused {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Descriptors(#[from] descriptors::DescriptorError),
    #[error("gadget {gadget}: {source}")]
    Gadget {
        gadget: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the ep0 thread: {0}")]
    Thread(std::io::Error),
}

/// A live FunctionFS function: descriptors written, ep0 events tracked.
pub struct Function {
    dir: PathBuf,
    shared: Arc<ep0::Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Function {
    /// Write `descriptors` and strings to `dir/ep0` and start tracking ep0 events.
    pub fn start(
        dir: &Path,
        descriptors: &FunctionDescriptors,
    ) -> Result<Function, FunctionFsError> {
        let ep0_path = dir.join("ep0");
        let mut ep0 = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&ep0_path)
            .map_err(|source| FunctionFsError::Open {
                path: ep0_path.clone(),
                source,
            })?;
        let strings = descriptors.encode_strings()?;
        ep0.write_all(&descriptors.encode_descriptors())
            .map_err(|source| FunctionFsError::Refused {
                what: "descriptors",
                path: ep0_path.clone(),
                source,
            })?;
        ep0.write_all(&strings)
            .map_err(|source| FunctionFsError::Refused {
                what: "strings",
                path: ep0_path.clone(),
                source,
            })?;
        let shared = Arc::new(ep0::Shared::default());
        let thread_shared = shared.clone();
        let name = format!("ffs-ep0:{}", dir.display());
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                ep0::run(ep0, thread_shared, |event| {
                    tracing::debug!(?event, "FunctionFS ep0 event");
                })
            })
            .map_err(FunctionFsError::Thread)?;
        Ok(Function {
            dir: dir.to_path_buf(),
            shared,
            thread: Some(thread),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the host has done so far.
    pub fn state(&self) -> BusState {
        self.shared.state().clone()
    }

    /// Wait for the host to bind (the gadget attached to a UDC) — or give up after `timeout`.
    pub fn wait_bound(&self, timeout: Duration) -> bool {
        self.shared
            .wait_for(timeout, |s| s.bound || s.ep0_closed)
            .bound
    }

    /// Wait until the host enables the function (configures the device), then return a link
    /// for that session. A session whose link was already handed out is not handed out again:
    /// after a disconnect, this waits for the next enablement.
    pub fn wait_link(
        &self,
        after_session: u64,
        timeout: Duration,
    ) -> Result<FunctionFsLink, TransportError> {
        let state = self.shared.wait_for(timeout, |s| {
            s.ep0_closed || (s.enabled && s.sessions > after_session)
        });
        if state.ep0_closed {
            return Err(TransportError::Disconnected);
        }
        if !(state.enabled && state.sessions > after_session) {
            return Err(TransportError::Timeout(timeout));
        }
        FunctionFsLink::open(&self.dir, self.shared.clone(), state.sessions)
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a session handler wants after its session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Keep the function; serve the host's next enablement (e.g. the host closed the link).
    Continue,
    /// Re-enumerate with the same personality: unbind, stay away `gone_for` (at least
    /// long enough for the host to see the disconnect), then bind again (a reboot).
    Reenumerate { gone_for: Duration },
    /// Re-enumerate as another device: new descriptors and identity (EDL → fastboot).
    Become {
        personality: Personality,
        gone_for: Duration,
    },
    /// Leave the bus (unbind) and return.
    Stop,
}

/// The least time the gadget stays unbound during a re-enumeration, so that the host's hub
/// driver sees a real disconnect before the device comes back.
const REPLUG_PAUSE: Duration = Duration::from_millis(300);

/// Serve sessions on the FunctionFS instance mounted at `dir` as `personality`. With `gadget`,
/// this process binds the gadget itself (after writing the descriptors, as the kernel
/// requires) and models re-enumeration by unbinding and re-binding it, setting the gadget's
/// identity for [`Next::Become`]; without, the caller sets the identity and binds the gadget,
/// and only [`Next::Continue`]/[`Next::Stop`] apply.
///
/// `handler` runs once per host session with that session's link and returns what to do next.
/// `handler` gets the session number (1 for the first enablement) for logs.
pub fn serve(
    dir: &Path,
    personality: &Personality,
    gadget: Option<&Gadget>,
    mut handler: impl FnMut(&mut FunctionFsLink, u64) -> Next,
) -> Result<(), FunctionFsError> {
    let gadget_err = |g: &Gadget, source| FunctionFsError::Gadget {
        gadget: g.dir().to_path_buf(),
        source,
    };
    let mut personality = personality.clone();
    'function: loop {
        let function = Function::start(dir, &personality.descriptors)?;
        if let Some(g) = gadget {
            g.bind().map_err(|e| gadget_err(g, e))?;
        }
        let mut last_session = 0;
        loop {
            let mut link = match function.wait_link(last_session, Duration::from_secs(3600)) {
                Ok(link) => link,
                Err(TransportError::Timeout(_)) => continue,
                Err(_) => return Ok(()), // ep0 closed: the gadget was torn down
            };
            last_session = function.state().sessions;
            link.set_terminate_whole_packets(personality.terminate_whole_packets);
            tracing::info!(session = last_session, dir = %dir.display(), "host enabled the function");
            let next = handler(&mut link, last_session);
            drop(link);
            match (next, gadget) {
                (Next::Continue, _) => {}
                (Next::Stop, g) => {
                    if let Some(g) = g {
                        g.unbind().map_err(|e| gadget_err(g, e))?;
                    }
                    return Ok(());
                }
                (Next::Reenumerate { gone_for }, Some(g)) => {
                    g.unbind().map_err(|e| gadget_err(g, e))?;
                    std::thread::sleep(REPLUG_PAUSE.max(gone_for));
                    g.bind().map_err(|e| gadget_err(g, e))?;
                }
                (
                    Next::Become {
                        personality: next,
                        gone_for,
                    },
                    Some(g),
                ) => {
                    g.unbind().map_err(|e| gadget_err(g, e))?;
                    // Descriptors can only be written once per ep0 open: close the function
                    // and start it again with the new ones.
                    drop(function);
                    g.set_identity(&next.identity)
                        .map_err(|e| gadget_err(g, e))?;
                    personality = next;
                    std::thread::sleep(REPLUG_PAUSE.max(gone_for));
                    continue 'function;
                }
                (next, None) => {
                    tracing::warn!(
                        ?next,
                        "re-enumeration needs the gadget's configfs directory; serving on"
                    );
                }
            }
        }
    }
}

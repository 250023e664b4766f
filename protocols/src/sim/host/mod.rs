//! Hosts of a simulated phone: what carries its personalities to a peer and re-enumerates it.
//! Each host serves the personality of the phone's mode and, after every session, carries
//! out the phone's [`Transition`](super::lifecycle::Transition) — it never decides a mode or a
//! re-enumeration itself. A host that can carry only one personality (fastboot TCP: fastboot;
//! a pty: EDL) stops serving when the phone leaves for the other one.
//!
//! - [`tcp`]: fastboot TCP, one connection after another (`FastbootDevice::serve_tcp`).
//! - [`stream`]: EDL on a byte stream such as a pty ([`stream::serve_edl`]).
//! - [`functionfs`] (Linux): both personalities on a USB gadget, re-enumerated by unbinding
//!   and re-binding it.
//! - The station's simulated USB bus (`station::sim_fleet`) is the fourth, beside the bus it
//!   plugs into.

#[cfg(target_os = "linux")]
pub mod functionfs;
pub mod stream;
pub mod tcp;

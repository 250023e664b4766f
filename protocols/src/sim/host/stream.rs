//! EDL on a byte stream (a pty standing in for Qualcomm's QDLoader tty) as a host of a
//! simulated phone: boot after boot on the same stream while the phone stays in EDL.

use crate::sim::edl::{self, EdlOutcome, EdlSimConfig, EdlSimError};
use crate::sim::lifecycle::{BusPersonality, Presence, Transition};
use crate::sim::phone::Phone;
use crate::transport::Transport;

/// Serve EDL boots of `phone` on `link` until the phone leaves EDL: a stream has no bus to
/// leave, so a phone that stays or comes back in EDL is served again on it (after its reboot
/// gap), and a phone that boots elsewhere or powers off ends serving with that transition.
/// `report` sees how each boot ended.
pub fn serve_edl(
    link: &mut dyn Transport,
    phone: &Phone,
    config: &EdlSimConfig,
    mut report: impl FnMut(&EdlOutcome),
) -> Result<Transition, EdlSimError> {
    loop {
        let outcome = edl::serve(link, phone, config)?;
        report(&outcome);
        let Some(transition) = phone.take_transition() else {
            continue;
        };
        match transition.presence {
            Presence::Stays => {}
            Presence::Returns {
                personality: BusPersonality::Edl,
                after,
            } => std::thread::sleep(after),
            Presence::Returns { .. } | Presence::Leaves => return Ok(transition),
        }
    }
}

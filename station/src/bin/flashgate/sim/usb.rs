//! `--functionfs DIR [--gadget DIR --udc NAME]` for `flashgate sim fastboot|edl`: serve the
//! simulated phone as a USB device on a mounted FunctionFS instance (Linux, a UDC such as
//! `dummy_hcd`'s `dummy_udc.N`), so hosts reach it through the kernel's USB stack.
//!
//! With `--gadget`, this process owns the gadget's bus presence: it writes the descriptors,
//! sets the identity for the phone's mode (fastboot 18d1:4ee0 with the serial; EDL 05c6:9008
//! with `QUSB__BULK_SN:XXXXXXXX`), binds it to `--udc`, and re-enumerates by unbinding and
//! re-binding whenever the phone reboots, as the other personality when its mode changes.
//! Without `--gadget`, whoever set up the gadget binds it after the descriptors are written
//! (when `DIR/ep1` appears) and re-enumeration is not modelled.

use std::path::PathBuf;
use std::process::ExitCode;

use protocols::sim::edl::EdlSimConfig;
use protocols::sim::{FastbootConfig, Phone};

#[derive(clap::Args, Debug, Default)]
pub struct UsbArgs {
    /// Serve on the FunctionFS instance mounted at DIR (a USB gadget function) instead.
    #[arg(long, value_name = "DIR")]
    pub functionfs: Option<PathBuf>,
    /// The gadget's configfs directory (…/usb_gadget/NAME): set its identity, bind it to
    /// --udc and re-enumerate it on reboots.
    #[arg(long, value_name = "DIR", requires = "functionfs", requires = "udc")]
    pub gadget: Option<PathBuf>,
    /// The USB device controller to bind the gadget to (a name in /sys/class/udc).
    #[arg(long, value_name = "NAME", requires = "gadget")]
    pub udc: Option<String>,
    /// Take in host data at most this fast, in bytes per second (suffixes K, M): a phone
    /// writing to slow flash. Gives an operator time to pull the cable mid-flash.
    #[arg(long, value_name = "BYTES", value_parser = crate::byte_size::parse_byte_size, requires = "functionfs")]
    pub usb_rate: Option<u64>,
}

/// Serve `phone` on FunctionFS until it powers off (or fail to set it up).
#[cfg(target_os = "linux")]
pub fn serve(
    usb: &UsbArgs,
    phone: Phone,
    edl: EdlSimConfig,
    fastboot: FastbootConfig,
) -> anyhow::Result<ExitCode> {
    use protocols::sim::host::functionfs::{serve_phone, PhoneOnUsb};
    use protocols::transport::functionfs::Gadget;

    let Some(dir) = &usb.functionfs else {
        anyhow::bail!("internal: no --functionfs directory");
    };
    let gadget = match (&usb.gadget, &usb.udc) {
        (Some(g), Some(udc)) => Some(Gadget::new(g, udc)),
        _ => None,
    };
    let identity = phone.identity();
    eprintln!(
        "simulated phone {} ({:?}) on FunctionFS {}{}{}",
        identity.serial,
        phone.mode(),
        dir.display(),
        gadget.as_ref().map_or(String::new(), |g| format!(
            ", gadget {} on {}",
            g.dir().display(),
            g.udc()
        )),
        usb.usb_rate
            .map_or(String::new(), |r| format!(", taking in {r} bytes/s"))
    );
    let setup = PhoneOnUsb {
        phone,
        edl,
        fastboot,
        ingress_bytes_per_second: usb.usb_rate,
    };
    let left_in = serve_phone(dir, gadget.as_ref(), setup)?;
    eprintln!("the phone left the bus (it is now in {left_in:?})");
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(target_os = "linux"))]
pub fn serve(
    _usb: &UsbArgs,
    _phone: Phone,
    _edl: EdlSimConfig,
    _fastboot: FastbootConfig,
) -> anyhow::Result<ExitCode> {
    anyhow::bail!("--functionfs needs Linux (FunctionFS, a USB device controller)")
}

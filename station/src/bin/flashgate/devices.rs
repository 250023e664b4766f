//! `flashgate devices` and `flashgate ports [--watch]`: what is attached, on which port path.

use std::path::Path;
use std::process::ExitCode;

use station::bus::rusb_bus::RusbBus;
use station::bus::{sysfs, BusDevice, BusError, BusEvent, UsbBus};

#[derive(clap::Args)]
pub struct DevicesArgs {}

#[derive(clap::Args)]
pub struct PortsArgs {
    /// Keep running and print plug/unplug events as they happen (walk the hub to label slots).
    #[arg(long)]
    watch: bool,
}

fn line(d: &BusDevice) -> String {
    format!(
        "{:<12} {:<9} {:04x}:{:04x}  {:<7} serial {}",
        d.port_path,
        d.kind.as_str(),
        d.vendor_id,
        d.product_id,
        d.speed,
        d.serial.as_deref().unwrap_or("(none)")
    )
}

/// The real bus. A machine where libusb cannot start (no USB subsystem, no usbfs, a container
/// without /dev/bus/usb) is an error, not "no devices": a script must be able to tell an empty
/// hub from a station that cannot see any hub.
fn open_bus() -> anyhow::Result<RusbBus> {
    RusbBus::new().map_err(|e| match e {
        BusError::NoUsbSubsystem(why) => anyhow::anyhow!(
            "cannot list USB devices: {why}; run this on the line PC (udev/README.md sets it up)"
        ),
        other => other.into(),
    })
}

pub fn devices(_args: DevicesArgs) -> anyhow::Result<ExitCode> {
    let bus = open_bus()?;
    let devices = bus.snapshot()?;
    if devices.is_empty() {
        println!("no devices");
    }
    for d in &devices {
        println!("{}", line(d));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ports(args: PortsArgs) -> anyhow::Result<ExitCode> {
    let ttys = sysfs::usb_ttys(Path::new("/sys"));
    for (tty, port) in &ttys {
        println!("{port:<12} serial-tty {}", tty.display());
    }
    let bus = open_bus()?;
    if !args.watch {
        let devices = bus.snapshot()?;
        if devices.is_empty() && ttys.is_empty() {
            println!("no devices");
        }
        for (i, d) in devices.iter().enumerate() {
            println!("{}", line(d));
            println!("    station.yaml: {}", d.slot_entry(i as u16 + 1));
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!("watching the USB bus; plug and unplug phones (Ctrl-C to stop)");
    for event in bus.watch()? {
        match event {
            BusEvent::Arrived(d) => println!("+ {}", line(&d)),
            BusEvent::Left { port_path, kind } => println!("- {port_path:<12} {}", kind.as_str()),
        }
    }
    // The watcher runs until Ctrl-C; its end is the USB watcher thread dying.
    anyhow::bail!(
        "the USB watch stopped: libusb no longer answers; run `flashgate ports --watch` again"
    )
}

//! `flashgate devices`: what is attached now.

use std::process::ExitCode;

use protocols::transport::usb::{list_devices, ListError, EDL_INTERFACE, FASTBOOT_INTERFACE};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    let mut lines = Vec::new();
    for (kind, want) in [("fastboot", &FASTBOOT_INTERFACE), ("edl", &EDL_INTERFACE)] {
        match list_devices(want) {
            Ok(devices) => {
                for d in devices {
                    lines.push(format!(
                        "{:<12} {:<9} {:04x}:{:04x}  serial {}",
                        d.port_path,
                        kind,
                        d.vendor_id,
                        d.product_id,
                        d.serial.as_deref().unwrap_or("(none)")
                    ));
                }
            }
            Err(ListError::NoUsbSubsystem(why)) => {
                println!("no devices (no USB subsystem on this machine: {why})");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if lines.is_empty() {
        println!("no devices");
    }
    for line in lines {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

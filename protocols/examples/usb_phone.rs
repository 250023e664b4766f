//! Serve one simulated phone on a FunctionFS instance (the device end of a real USB link), the
//! stand-in for `flashgate sim edl|fastboot --functionfs` in `tests/usbvm`.
//!
//! ```text
//! usb_phone edl FFS_DIR GADGET_DIR UDC STORAGE_DIR PROGRAMMER [SERIAL] [CHIP_SERIAL_HEX]
//! ```
//! The process writes the descriptors, sets the gadget identity and binds it to UDC, and
//! re-enumerates (unbind, bind) after every programmer reset, staying in EDL.

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    use std::path::Path;

    use flashgate_protocols::sim::edl::EdlSimConfig;
    use flashgate_protocols::sim::Phone;
    use flashgate_protocols::transport::functionfs::{sim_phone, Gadget};

    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 || args[0] != "edl" {
        eprintln!(
            "usage: usb_phone edl FFS_DIR GADGET_DIR UDC STORAGE_DIR PROGRAMMER [SERIAL] [CHIP_SERIAL_HEX]"
        );
        return std::process::ExitCode::from(2);
    }
    let programmer = match std::fs::read(&args[5]) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("usb_phone: cannot read programmer {}: {e}", args[5]);
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut builder = Phone::builder()
        .storage_dir(&args[4])
        .accept_programmer_bytes(&programmer);
    if let Some(serial) = args.get(6) {
        builder = builder.serial(serial);
    }
    if let Some(chip) = args.get(7).and_then(|h| u32::from_str_radix(h, 16).ok()) {
        builder = builder.chip_serial(chip);
    }
    let phone = match builder.build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("usb_phone: cannot create the phone storage: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut config = EdlSimConfig::new(2);
    // A ROM waits for its host as long as it is powered.
    config.rom.host_timeout = std::time::Duration::from_secs(24 * 3600);
    let gadget = Gadget::new(Path::new(&args[2]), &args[3]);
    if let Err(e) = gadget.set_identity(&sim_phone::edl_personality(&phone).identity) {
        eprintln!("usb_phone: {e}");
        return std::process::ExitCode::FAILURE;
    }
    eprintln!(
        "usb_phone: EDL phone {} (chip serial {:08X}) on {}",
        phone.identity().serial,
        phone.identity().chip_serial,
        args[1]
    );
    match sim_phone::serve_edl(Path::new(&args[1]), Some(&gadget), &phone, &config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("usb_phone: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("usb_phone needs Linux (FunctionFS)");
}

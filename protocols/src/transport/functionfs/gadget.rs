//! The configfs side of a USB gadget (`/sys/kernel/config/usb_gadget/NAME`): the device-level
//! identity (VID/PID, manufacturer, product and serial strings) and the binding to a UDC.
//!
//! Unbinding (writing an empty line to `UDC`) is a cable pull as the host sees it; binding again
//! is a re-plug on the same port. That is how a serving process models a phone rebooting or
//! moving from EDL to fastboot.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Device-level identity, set in configfs while the gadget is unbound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub vendor_id: u16,
    pub product_id: u16,
    pub manufacturer: String,
    pub product: String,
    pub serial: String,
}

/// A gadget directory in configfs and the UDC it is bound to.
#[derive(Debug, Clone)]
pub struct Gadget {
    dir: PathBuf,
    udc: String,
}

fn annotate(e: io::Error, path: &Path, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

impl Gadget {
    /// The gadget at `dir`, to be bound to `udc` (e.g. `dummy_udc.0`).
    pub fn new(dir: &Path, udc: &str) -> Gadget {
        Gadget {
            dir: dir.to_path_buf(),
            udc: udc.to_string(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn udc(&self) -> &str {
        &self.udc
    }

    fn write(&self, rel: &str, value: &str) -> io::Result<()> {
        let path = self.dir.join(rel);
        fs::write(&path, format!("{value}\n")).map_err(|e| annotate(e, &path, "cannot write"))
    }

    /// True when the gadget is bound to a UDC now.
    pub fn is_bound(&self) -> io::Result<bool> {
        let path = self.dir.join("UDC");
        let value = fs::read_to_string(&path).map_err(|e| annotate(e, &path, "cannot read"))?;
        Ok(!value.trim().is_empty())
    }

    /// Attach the gadget to its UDC: the host sees a device arrive on that port.
    pub fn bind(&self) -> io::Result<()> {
        self.write("UDC", &self.udc)
    }

    /// Detach the gadget from its UDC: the host sees the device leave. Idempotent.
    pub fn unbind(&self) -> io::Result<()> {
        if self.is_bound()? {
            self.write("UDC", "")?;
        }
        Ok(())
    }

    /// Set VID/PID and the device strings (US English). The gadget must be unbound.
    pub fn set_identity(&self, id: &DeviceIdentity) -> io::Result<()> {
        self.write("idVendor", &format!("0x{:04x}", id.vendor_id))?;
        self.write("idProduct", &format!("0x{:04x}", id.product_id))?;
        let strings = self.dir.join("strings/0x409");
        fs::create_dir_all(&strings).map_err(|e| annotate(e, &strings, "cannot create"))?;
        self.write("strings/0x409/manufacturer", &id.manufacturer)?;
        self.write("strings/0x409/product", &id.product)?;
        self.write("strings/0x409/serialnumber", &id.serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_binding_are_plain_configfs_writes() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("UDC"), "\n").unwrap();
        let g = Gadget::new(dir.path(), "dummy_udc.1");
        assert!(!g.is_bound().unwrap());
        g.set_identity(&DeviceIdentity {
            vendor_id: 0x05c6,
            product_id: 0x9008,
            manufacturer: "Qualcomm CDMA Technologies MSM".into(),
            product: "QUSB__BULK_SN:1A2B3C4D".into(),
            serial: String::new(),
        })
        .unwrap();
        let read = |p: &str| fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(read("idVendor"), "0x05c6\n");
        assert_eq!(read("idProduct"), "0x9008\n");
        assert_eq!(read("strings/0x409/product"), "QUSB__BULK_SN:1A2B3C4D\n");
        g.bind().unwrap();
        assert_eq!(read("UDC"), "dummy_udc.1\n");
        assert!(g.is_bound().unwrap());
        g.unbind().unwrap();
        assert_eq!(read("UDC"), "\n");
    }
}

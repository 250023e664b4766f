//! Mapping a Qualcomm QDLoader tty (`/dev/ttyUSB0`, driven by the kernel's qcserial) back to
//! the USB port path it hangs off, so a serial-attached EDL phone lands on the same slot as it
//! would over libusb.

use std::path::{Path, PathBuf};

/// True for a USB device name in sysfs: `<bus>-<port>[.<port>]*`, e.g. `1-4.2`.
fn is_port_path(name: &str) -> bool {
    let Some((bus, ports)) = name.split_once('-') else {
        return false;
    };
    !bus.is_empty()
        && bus.bytes().all(|b| b.is_ascii_digit())
        && !ports.is_empty()
        && ports
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The port path in a resolved sysfs device path, e.g.
/// `/sys/devices/pci0000:00/0000:00:14.0/usb1/1-4/1-4.2/1-4.2:1.0/ttyUSB0` → `1-4.2`.
pub fn port_path_in(device_path: &Path) -> Option<String> {
    device_path
        .components()
        .rev()
        .filter_map(|c| c.as_os_str().to_str())
        .find(|name| is_port_path(name))
        .map(str::to_string)
}

/// The USB port path of tty `name` (`ttyUSB0` or `/dev/ttyUSB0`) under `sysfs_root`
/// (normally `/sys`). None when it is not a USB tty or sysfs does not know it.
pub fn port_path_of_tty(sysfs_root: &Path, name: &str) -> Option<String> {
    let name = name.rsplit('/').next()?;
    let link = sysfs_root.join("class/tty").join(name).join("device");
    let resolved = std::fs::canonicalize(link).ok()?;
    port_path_in(&resolved)
}

/// Every USB tty (`ttyUSB*`, `ttyACM*`) with its port path, sorted by tty name.
pub fn usb_ttys(sysfs_root: &Path) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(sysfs_root.join("class/tty")) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            if !(name.starts_with("ttyUSB") || name.starts_with("ttyACM")) {
                return None;
            }
            let port = port_path_of_tty(sysfs_root, &name)?;
            Some((PathBuf::from("/dev").join(name), port))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_deepest_port_path() {
        let p = Path::new("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-4/1-4.2/1-4.2:1.0/ttyUSB0");
        assert_eq!(port_path_in(p).as_deref(), Some("1-4.2"));
        assert_eq!(
            port_path_in(Path::new("/sys/devices/virtual/tty/tty0")),
            None
        );
        assert!(!is_port_path("1-"));
        assert!(!is_port_path("1-4..2"));
        assert!(!is_port_path("usb1"));
        assert!(is_port_path("3-1.10.2"));
    }

    #[test]
    fn resolves_a_tty_through_a_fake_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let dev = root
            .path()
            .join("devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1.3/2-1.3:1.0/ttyUSB1");
        std::fs::create_dir_all(&dev).unwrap();
        let class = root.path().join("class/tty/ttyUSB1");
        std::fs::create_dir_all(&class).unwrap();
        std::os::unix::fs::symlink(dev.parent().unwrap(), class.join("device")).unwrap();
        assert_eq!(
            port_path_of_tty(root.path(), "/dev/ttyUSB1").as_deref(),
            Some("2-1.3")
        );
        assert_eq!(
            usb_ttys(root.path()),
            vec![(PathBuf::from("/dev/ttyUSB1"), "2-1.3".to_string())]
        );
        assert_eq!(port_path_of_tty(root.path(), "ttyUSB9"), None);
    }
}

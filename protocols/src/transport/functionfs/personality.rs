//! What a simulated phone looks like on the bus in each mode: the gadget identity set through
//! configfs (VID/PID, strings) plus the FunctionFS interface, and how its bulk IN messages end.

use super::descriptors::{self, FunctionDescriptors};
use super::gadget::DeviceIdentity;

/// One way of showing up on USB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personality {
    pub descriptors: FunctionDescriptors,
    pub identity: DeviceIdentity,
    /// Send a zero-length packet after IN messages of a whole number of packets
    /// ([`super::FunctionFsLink::set_terminate_whole_packets`]).
    pub terminate_whole_packets: bool,
}

/// A phone's bootloader fastboot: Google's 18d1:4ee0, serial in iSerial, interface ff/42/03.
/// Fastboot hosts read data phases by length, so no ZLPs.
pub fn fastboot(serial: &str, product: &str) -> Personality {
    Personality {
        descriptors: descriptors::fastboot(),
        identity: DeviceIdentity {
            vendor_id: 0x18d1,
            product_id: 0x4ee0,
            manufacturer: "Google".to_string(),
            product: product.to_string(),
            serial: serial.to_string(),
        },
        terminate_whole_packets: false,
    }
}

/// Qualcomm EDL (QDLoader 9008): 05c6:9008, the chip serial in the product string as
/// `QUSB__BULK_SN:XXXXXXXX` (the ROM has no serial descriptor), interface ff/ff/10. Firehose
/// hosts read XML into large buffers, so whole-packet messages end with a ZLP as Qualcomm's
/// device stack does.
pub fn edl(chip_serial: u32) -> Personality {
    Personality {
        descriptors: descriptors::edl(),
        identity: DeviceIdentity {
            vendor_id: 0x05c6,
            product_id: 0x9008,
            manufacturer: "Qualcomm CDMA Technologies MSM".to_string(),
            product: format!("QUSB__BULK_SN:{chip_serial:08X}"),
            serial: String::new(),
        },
        terminate_whole_packets: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edl_serial_is_in_the_product_string() {
        let p = edl(0x1a2b3c4d);
        assert_eq!(p.identity.product, "QUSB__BULK_SN:1A2B3C4D");
        assert_eq!(
            (p.identity.vendor_id, p.identity.product_id),
            (0x05c6, 0x9008)
        );
        assert_eq!(p.descriptors.interface.protocol, 0x10);
        assert!(p.terminate_whole_packets);
        let f = fastboot("FG0001", "flashgate-sim");
        assert_eq!(
            (f.identity.vendor_id, f.identity.product_id),
            (0x18d1, 0x4ee0)
        );
        assert_eq!(f.identity.serial, "FG0001");
        assert!(!f.terminate_whole_packets);
    }
}

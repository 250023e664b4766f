//! The two blobs a FunctionFS function writes to `ep0` before it exists on the bus: the
//! descriptors (format v2, `FUNCTIONFS_DESCRIPTORS_MAGIC_V2`) and the strings table, laid out as
//! the kernel's `include/uapi/linux/usb/functionfs.h` documents them. All fields little-endian.
//!
//! Our functions are one vendor-specific interface with one bulk IN and one bulk OUT endpoint,
//! which is what fastboot (0xff/0x42/0x03) and Qualcomm EDL (0xff/0xff/0x10) devices expose.
//! Full-speed endpoints carry 64-byte packets and high-speed ones 512, as USB 2.0 requires for
//! bulk endpoints; the UDC picks the set that matches the link speed.

const DESCRIPTORS_MAGIC_V2: u32 = 3;
const STRINGS_MAGIC: u32 = 2;
const HAS_FS_DESC: u32 = 1;
const HAS_HS_DESC: u32 = 2;

const USB_DT_INTERFACE: u8 = 4;
const USB_DT_ENDPOINT: u8 = 5;
const USB_ENDPOINT_XFER_BULK: u8 = 2;
/// US English, the only language our strings table carries.
const LANG_EN_US: u16 = 0x0409;

/// wMaxPacketSize of bulk endpoints at full speed (USB 2.0 §5.8.3 allows 8–64; 64 is usual).
pub const FULL_SPEED_BULK_PACKET: u16 = 64;
/// wMaxPacketSize of bulk endpoints at high speed (fixed at 512 by USB 2.0).
pub const HIGH_SPEED_BULK_PACKET: u16 = 512;

/// Class, subclass and protocol of the function's only interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceClass {
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
}

/// What the function looks like on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDescriptors {
    pub interface: InterfaceClass,
    /// The interface string (iInterface), e.g. `fastboot`. Device-level strings (manufacturer,
    /// product, serial) belong to the gadget and are set through configfs, not here.
    pub interface_name: String,
}

/// The fastboot interface as AOSP devices expose it (class 0xff, subclass 0x42, protocol 0x03).
pub fn fastboot() -> FunctionDescriptors {
    FunctionDescriptors {
        interface: InterfaceClass {
            class: 0xff,
            subclass: 0x42,
            protocol: 0x03,
        },
        interface_name: "fastboot".to_string(),
    }
}

/// The Qualcomm QDLoader 9008 interface (class 0xff, subclass 0xff, protocol 0x10).
pub fn edl() -> FunctionDescriptors {
    FunctionDescriptors {
        interface: InterfaceClass {
            class: 0xff,
            subclass: 0xff,
            protocol: 0x10,
        },
        interface_name: "QDLoader 9008".to_string(),
    }
}

/// Why descriptors could not be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DescriptorError {
    #[error("interface string {0:?} contains a NUL byte; FunctionFS strings are NUL-terminated")]
    NulInString(String),
    #[error(
        "interface string is {0} bytes; a USB string descriptor holds at most 126 UTF-16 units"
    )]
    StringTooLong(usize),
}

fn interface_descriptor(class: InterfaceClass, out: &mut Vec<u8>) {
    out.extend_from_slice(&[
        9, // bLength
        USB_DT_INTERFACE,
        0, // bInterfaceNumber: FunctionFS renumbers interfaces within the configuration
        0, // bAlternateSetting
        2, // bNumEndpoints
        class.class,
        class.subclass,
        class.protocol,
        1, // iInterface: the first string of our table
    ]);
}

fn bulk_endpoint(address: u8, max_packet: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&[7, USB_DT_ENDPOINT, address, USB_ENDPOINT_XFER_BULK]);
    out.extend_from_slice(&max_packet.to_le_bytes());
    out.push(0); // bInterval: ignored for bulk IN, NAK rate for high-speed OUT (0: never NAKs)
}

fn speed_set(class: InterfaceClass, max_packet: u16, out: &mut Vec<u8>) {
    interface_descriptor(class, out);
    // ep1 (the first endpoint file) is bulk IN, ep2 bulk OUT. FunctionFS names the files in
    // descriptor order; the UDC assigns the real addresses.
    bulk_endpoint(0x81, max_packet, out);
    bulk_endpoint(0x02, max_packet, out);
}

impl FunctionDescriptors {
    /// The descriptors blob (v2 format, full- and high-speed sets, no eventfd, no OS descs).
    pub fn encode_descriptors(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64);
        speed_set(self.interface, FULL_SPEED_BULK_PACKET, &mut body);
        speed_set(self.interface, HIGH_SPEED_BULK_PACKET, &mut body);
        let descriptors_per_speed: u32 = 3;
        let header_len = 4 * 5;
        let mut out = Vec::with_capacity(header_len + body.len());
        out.extend_from_slice(&DESCRIPTORS_MAGIC_V2.to_le_bytes());
        out.extend_from_slice(&((header_len + body.len()) as u32).to_le_bytes());
        out.extend_from_slice(&(HAS_FS_DESC | HAS_HS_DESC).to_le_bytes());
        out.extend_from_slice(&descriptors_per_speed.to_le_bytes()); // fs_count
        out.extend_from_slice(&descriptors_per_speed.to_le_bytes()); // hs_count
        out.extend_from_slice(&body);
        out
    }

    /// The strings blob: one language (en-US) with one string, the interface name.
    pub fn encode_strings(&self) -> Result<Vec<u8>, DescriptorError> {
        let name = &self.interface_name;
        if name.contains('\0') {
            return Err(DescriptorError::NulInString(name.clone()));
        }
        if name.encode_utf16().count() > 126 {
            return Err(DescriptorError::StringTooLong(name.len()));
        }
        let len = 16 + 2 + name.len() + 1;
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&STRINGS_MAGIC.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes()); // str_count
        out.extend_from_slice(&1u32.to_le_bytes()); // lang_count
        out.extend_from_slice(&LANG_EN_US.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout of functionfs.h's "Descriptors format" table, field by field.
    #[test]
    fn fastboot_descriptors_match_the_documented_v2_layout() {
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x03, 0, 0, 0,          // magic: FUNCTIONFS_DESCRIPTORS_MAGIC_V2
            0x42, 0, 0, 0,          // length: 20 + 2 * (9 + 7 + 7) = 66
            0x03, 0, 0, 0,          // flags: HAS_FS_DESC | HAS_HS_DESC
            0x03, 0, 0, 0,          // fs_count
            0x03, 0, 0, 0,          // hs_count
            // full speed: interface 0xff/0x42/0x03, iInterface 1
            9, 4, 0, 0, 2, 0xff, 0x42, 0x03, 1,
            7, 5, 0x81, 2, 0x40, 0x00, 0, // bulk IN, 64 bytes
            7, 5, 0x02, 2, 0x40, 0x00, 0, // bulk OUT, 64 bytes
            // high speed
            9, 4, 0, 0, 2, 0xff, 0x42, 0x03, 1,
            7, 5, 0x81, 2, 0x00, 0x02, 0, // bulk IN, 512 bytes
            7, 5, 0x02, 2, 0x00, 0x02, 0, // bulk OUT, 512 bytes
        ];
        assert_eq!(fastboot().encode_descriptors(), expected);
    }

    #[test]
    fn edl_interface_triple_is_ff_ff_10() {
        let d = edl().encode_descriptors();
        assert_eq!(&d[20..29], &[9, 4, 0, 0, 2, 0xff, 0xff, 0x10, 1]);
        assert_eq!(&d[43..52], &[9, 4, 0, 0, 2, 0xff, 0xff, 0x10, 1]);
    }

    /// The layout of functionfs.h's "Strings format" table.
    #[test]
    fn strings_match_the_documented_layout() {
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x02, 0, 0, 0,          // magic: FUNCTIONFS_STRINGS_MAGIC
            0x1b, 0, 0, 0,          // length: 16 + 2 + 9 = 27
            0x01, 0, 0, 0,          // str_count
            0x01, 0, 0, 0,          // lang_count
            0x09, 0x04,             // lang: en-US
            b'f', b'a', b's', b't', b'b', b'o', b'o', b't', 0,
        ];
        assert_eq!(fastboot().encode_strings().unwrap(), expected);
    }

    #[test]
    fn strings_refuse_nul_and_overlong_names() {
        let mut d = fastboot();
        d.interface_name = "fast\0boot".into();
        assert!(matches!(
            d.encode_strings(),
            Err(DescriptorError::NulInString(_))
        ));
        d.interface_name = "x".repeat(127);
        assert_eq!(d.encode_strings(), Err(DescriptorError::StringTooLong(127)));
    }
}

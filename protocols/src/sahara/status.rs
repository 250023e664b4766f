//! Sahara status codes (the `status` field of END_OF_IMAGE and HELLO_RESP).
//!
//! The device reports why it gave up with one of these in END_OF_IMAGE; an engineer needs the
//! name and a sentence, not a number, so every known code carries both. Unknown codes stay
//! representable (a newer boot ROM may add some) and print as hex.

use std::fmt;

/// A Sahara status code as it travels on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u32);

macro_rules! statuses {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        impl Status {
            $(pub const $name: Status = Status($value);)*

            /// The constant's name (`IMAGE_AUTH_FAILURE`), or `None` for a code we do not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// What the code means, in a sentence an engineer can act on.
            pub fn description(self) -> &'static str {
                match self.0 {
                    $($value => $text,)*
                    _ => "unknown status code",
                }
            }
        }
    };
}

statuses! {
    SUCCESS = 0x00, "success";
    INVALID_CMD = 0x01, "invalid command received in the current state";
    PROTOCOL_MISMATCH = 0x02, "protocol mismatch between host and target";
    INVALID_TARGET_PROTOCOL = 0x03, "invalid target protocol version";
    INVALID_HOST_PROTOCOL = 0x04, "invalid host protocol version";
    INVALID_PACKET_SIZE = 0x05, "invalid packet size received";
    UNEXPECTED_IMAGE_ID = 0x06, "unexpected image id received";
    INVALID_HEADER_SIZE = 0x07, "invalid image header size received";
    INVALID_DATA_SIZE = 0x08, "invalid image data size received";
    INVALID_IMAGE_TYPE = 0x09, "invalid image type received";
    INVALID_TX_LENGTH = 0x0a, "invalid transmission length";
    INVALID_RX_LENGTH = 0x0b, "invalid reception length";
    GENERAL_TX_RX_ERROR = 0x0c, "general transmission or reception error";
    READ_DATA_ERROR = 0x0d, "error while transmitting a READ_DATA packet";
    UNSUPPORTED_NUM_PHDRS = 0x0e, "cannot receive the specified number of ELF program headers";
    INVALID_PHDR_SIZE = 0x0f, "invalid data length received for the ELF program headers";
    MULTIPLE_SHARED_SEG = 0x10, "multiple shared segments found in the ELF image";
    UNINIT_PHDR_LOC = 0x11, "uninitialised program header location";
    INVALID_DEST_ADDR = 0x12, "invalid destination address";
    INVALID_IMG_HDR_DATA_SIZE = 0x13, "invalid data size in the image header";
    INVALID_ELF_HDR = 0x14, "invalid ELF header received";
    UNKNOWN_HOST_ERROR = 0x15, "unknown host error received in HELLO_RESP";
    TIMEOUT_RX = 0x16, "timeout while receiving data";
    TIMEOUT_TX = 0x17, "timeout while transmitting data";
    INVALID_HOST_MODE = 0x18, "invalid mode received from the host";
    INVALID_MEMORY_READ = 0x19, "invalid memory read access";
    INVALID_DATA_SIZE_REQUEST = 0x1a, "the host cannot handle the read data size requested";
    MEMORY_DEBUG_NOT_SUPPORTED = 0x1b, "memory debug not supported";
    INVALID_MODE_SWITCH = 0x1c, "invalid mode switch";
    CMD_EXEC_FAILURE = 0x1d, "failed to execute the command";
    EXEC_CMD_INVALID_PARAM = 0x1e, "invalid parameter passed to command execution";
    EXEC_CMD_UNSUPPORTED = 0x1f, "unsupported client command received";
    EXEC_DATA_INVALID_CLIENT_CMD = 0x20, "invalid client command received for the data response";
    HASH_TABLE_AUTH_FAILURE = 0x21, "failed to authenticate the hash table: programmer not signed for this device";
    HASH_VERIFICATION_FAILURE = 0x22, "failed to verify the hash of an ELF segment: programmer corrupted";
    HASH_TABLE_NOT_FOUND = 0x23, "no hash table found in the ELF image: unsigned programmer";
    TARGET_INIT_FAILURE = 0x24, "the target failed to initialise";
    IMAGE_AUTH_FAILURE = 0x25, "failed to authenticate the image: programmer not signed for this device";
    INVALID_IMG_HASH_TABLE_SIZE = 0x26, "invalid ELF hash table size";
    ENUMERATION_FAILURE = 0x27, "enumeration failed";
    HW_BULK_TRANSFER_ERROR = 0x28, "hardware bulk transfer error";
}

impl Status {
    pub fn is_success(self) -> bool {
        self == Status::SUCCESS
    }

    /// The codes a boot ROM uses when it refuses a programmer's signature or hashes.
    pub fn is_authentication_failure(self) -> bool {
        matches!(
            self,
            Status::HASH_TABLE_AUTH_FAILURE
                | Status::HASH_VERIFICATION_FAILURE
                | Status::HASH_TABLE_NOT_FOUND
                | Status::IMAGE_AUTH_FAILURE
                | Status::INVALID_IMG_HASH_TABLE_SIZE
        )
    }
}

impl fmt::Display for Status {
    /// `0x25 IMAGE_AUTH_FAILURE (failed to authenticate the image …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "0x{:02x} {name} ({})", self.0, self.description()),
            None => write!(f, "0x{:08x} (unknown status code)", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions_follow_the_code() {
        assert_eq!(Status(0x25).name(), Some("IMAGE_AUTH_FAILURE"));
        assert_eq!(Status(0x01).name(), Some("INVALID_CMD"));
        assert_eq!(Status(0x1f).name(), Some("EXEC_CMD_UNSUPPORTED"));
        assert_eq!(Status(0x28).name(), Some("HW_BULK_TRANSFER_ERROR"));
        assert_eq!(Status(0x29).name(), None);
        assert_eq!(
            Status(0x08).description(),
            "invalid image data size received"
        );
    }

    #[test]
    fn display_names_known_and_unknown_codes() {
        assert_eq!(
            Status::IMAGE_AUTH_FAILURE.to_string(),
            "0x25 IMAGE_AUTH_FAILURE (failed to authenticate the image: programmer not signed for this device)"
        );
        assert_eq!(
            Status(0xdead_beef).to_string(),
            "0xdeadbeef (unknown status code)"
        );
    }

    #[test]
    fn authentication_failures_are_recognised() {
        assert!(Status::IMAGE_AUTH_FAILURE.is_authentication_failure());
        assert!(Status::HASH_TABLE_AUTH_FAILURE.is_authentication_failure());
        assert!(!Status::SUCCESS.is_authentication_failure());
        assert!(!Status::INVALID_DATA_SIZE.is_authentication_failure());
    }
}

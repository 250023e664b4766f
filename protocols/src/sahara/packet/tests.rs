//! Literal-byte tables for every Sahara command, and malformed input.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    hex::decode(s).expect("test hex")
}

/// (packet, its bytes) for every command.
fn table() -> Vec<(Packet, Vec<u8>)> {
    vec![
        (
            // What an SDM660 boot ROM sends (qdl log: version 2 compatible 1 max_len 1024 mode 0).
            Packet::Hello(Hello {
                version: 2,
                version_compatible: 1,
                max_packet_len: 1024,
                mode: Mode::ImageTxPending,
            }),
            hex("01000000 30000000 02000000 01000000 00040000 00000000
                 00000000 00000000 00000000 00000000 00000000 00000000"),
        ),
        (
            Packet::HelloResp(HelloResp {
                version: 3,
                version_compatible: 1,
                status: Status::SUCCESS,
                mode: Mode::Command,
            }),
            hex("02000000 30000000 03000000 01000000 00000000 03000000
                 00000000 00000000 00000000 00000000 00000000 00000000"),
        ),
        (
            Packet::ReadData {
                image: 13,
                offset: 0x40,
                length: 0x2d8,
            },
            hex("03000000 14000000 0d000000 40000000 d8020000"),
        ),
        (
            Packet::EndOfImage {
                image: 13,
                status: Status::IMAGE_AUTH_FAILURE,
            },
            hex("04000000 10000000 0d000000 25000000"),
        ),
        (Packet::Done, hex("05000000 08000000")),
        (
            Packet::DoneResp {
                status: Mode::ImageTxComplete,
            },
            hex("06000000 0c000000 01000000"),
        ),
        (Packet::Reset, hex("07000000 08000000")),
        (Packet::ResetResp, hex("08000000 08000000")),
        (
            Packet::MemoryDebug {
                table_address: 0x8600_0000,
                table_length: 0x348,
            },
            hex("09000000 10000000 00000086 48030000"),
        ),
        (
            Packet::MemoryRead {
                address: 0x1000,
                length: 0x80000,
            },
            hex("0a000000 10000000 00100000 00000800"),
        ),
        (Packet::CmdReady, hex("0b000000 08000000")),
        (
            Packet::SwitchMode {
                mode: Mode::ImageTxPending,
            },
            hex("0c000000 0c000000 00000000"),
        ),
        (
            Packet::Execute {
                command: ExecCommand::ReadChipIdV3,
            },
            hex("0d000000 0c000000 0a000000"),
        ),
        (
            Packet::ExecuteResp {
                command: ExecCommand::SerialNumRead,
                data_length: 4,
            },
            hex("0e000000 10000000 01000000 04000000"),
        ),
        (
            Packet::ExecuteData {
                command: ExecCommand::OemPkHashRead,
            },
            hex("0f000000 0c000000 03000000"),
        ),
        (
            Packet::MemoryDebug64 {
                table_address: 0x1_4680_0000,
                table_length: 0x1a0,
            },
            hex("10000000 18000000 00008046 01000000 a0010000 00000000"),
        ),
        (
            Packet::MemoryRead64 {
                address: 0x8000_0000,
                length: 0x1000,
            },
            hex("11000000 18000000 00000080 00000000 00100000 00000000"),
        ),
        (
            Packet::ReadData64 {
                image: 13,
                offset: 0x3000,
                length: 0x1000,
            },
            hex("12000000 20000000 0d000000 00000000 00300000 00000000 00100000 00000000"),
        ),
        (Packet::ResetStateMachine, hex("13000000 08000000")),
    ]
}

#[test]
fn every_command_encodes_to_its_literal_bytes() {
    for (packet, bytes) in table() {
        assert_eq!(packet.encode(), bytes, "{}", packet.name());
    }
}

#[test]
fn every_command_decodes_from_its_literal_bytes() {
    for (packet, bytes) in table() {
        assert_eq!(Packet::decode(&bytes), Ok(packet), "{}", packet.name());
    }
}

#[test]
fn table_covers_every_command() {
    let mut commands: Vec<u32> = table().iter().map(|(p, _)| p.command()).collect();
    commands.sort();
    assert_eq!(commands, (0x01..=0x13).collect::<Vec<u32>>());
}

#[test]
fn hello_reserved_words_are_ignored_on_decode() {
    let mut bytes = table()[0].1.clone();
    bytes[24..48].fill(0xaa);
    assert!(matches!(
        Packet::decode(&bytes),
        Ok(Packet::Hello(Hello { version: 2, .. }))
    ));
}

#[test]
fn unknown_modes_and_client_commands_stay_representable() {
    let bytes = hex("0c000000 0c000000 07000000");
    assert_eq!(
        Packet::decode(&bytes),
        Ok(Packet::SwitchMode {
            mode: Mode::Unknown(7)
        })
    );
    let bytes = hex("0d000000 0c000000 44000000");
    let packet = Packet::decode(&bytes).unwrap();
    assert_eq!(
        packet,
        Packet::Execute {
            command: ExecCommand::Unknown(0x44)
        }
    );
    assert_eq!(packet.encode(), bytes);
}

#[test]
fn short_input_is_an_error() {
    assert_eq!(Packet::decode(&[]), Err(PacketError::Short { len: 0 }));
    assert_eq!(
        Packet::decode(&hex("01000000 3000")),
        Err(PacketError::Short { len: 6 })
    );
}

#[test]
fn declared_length_must_match_the_bytes() {
    // A HELLO cut after 20 bytes.
    let bytes = &table()[0].1[..20];
    assert_eq!(
        Packet::decode(bytes),
        Err(PacketError::LengthMismatch {
            declared: 0x30,
            actual: 20
        })
    );
    // Trailing bytes after DONE.
    assert_eq!(
        Packet::decode(&hex("05000000 08000000 00")),
        Err(PacketError::LengthMismatch {
            declared: 8,
            actual: 9
        })
    );
}

#[test]
fn declared_length_is_bounded() {
    assert_eq!(
        Packet::decode(&hex("01000000 04000000")),
        Err(PacketError::LengthOutOfBounds { declared: 4 })
    );
    assert_eq!(
        Header::parse(&hex("03000000 ffffffff")),
        Err(PacketError::LengthOutOfBounds {
            declared: 0xffff_ffff
        })
    );
    assert_eq!(
        Header::parse(&hex("03000000 01040000")),
        Err(PacketError::LengthOutOfBounds { declared: 0x401 })
    );
    assert_eq!(
        Header::parse(&hex("03000000 14000000")).map(|h| h.body_len()),
        Ok(12)
    );
}

#[test]
fn each_command_has_one_size() {
    // READ_DATA declaring (and carrying) 24 bytes instead of 20.
    let bytes = hex("03000000 18000000 0d000000 00000000 00100000 00000000");
    assert_eq!(
        Packet::decode(&bytes),
        Err(PacketError::WrongSize {
            name: "READ_DATA",
            expected: 0x14,
            declared: 0x18
        })
    );
}

#[test]
fn unknown_commands_are_errors() {
    assert_eq!(
        Packet::decode(&hex("14000000 08000000")),
        Err(PacketError::UnknownCommand { command: 0x14 })
    );
    // The first bytes of a Firehose programmer's answer.
    assert_eq!(
        Packet::decode(b"<?xml ve"),
        Err(PacketError::LengthOutOfBounds {
            declared: u32::from_le_bytes(*b"l ve")
        })
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A deterministic sweep of short inputs and mutated valid packets.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (_, bytes) in table() {
        for _ in 0..200 {
            let mut b = bytes.clone();
            let i = (next() as usize) % b.len();
            b[i] = next() as u8;
            let cut = (next() as usize) % (b.len() + 1);
            let _ = Packet::decode(&b);
            let _ = Packet::decode(&b[..cut]);
            let _ = Header::parse(&b[..cut]);
        }
    }
    for len in 0..64 {
        let b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = Packet::decode(&b);
    }
}

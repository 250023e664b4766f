//! One table of literal bytes for every fastboot command and response, tested both ways: what
//! the host encodes is what the device parses, and what the device encodes is what the host
//! parses. Then what is accepted only one way, and what must be an error (never a panic).

use super::command::*;
use super::response::*;
use super::variable::Variable;

const MAX: usize = DEFAULT_MAX_COMMAND_LEN;

/// (command, its bytes) for every command a real host sends, as AOSP's client spells them.
fn commands() -> Vec<(Command<'static>, &'static [u8])> {
    use Command as C;
    use Variable as V;
    vec![
        (C::GetVar(V::All), b"getvar:all"),
        (C::GetVar(V::Version), b"getvar:version"),
        (
            C::GetVar(V::VersionBootloader),
            b"getvar:version-bootloader",
        ),
        (C::GetVar(V::VersionBaseband), b"getvar:version-baseband"),
        (C::GetVar(V::Product), b"getvar:product"),
        (C::GetVar(V::SerialNo), b"getvar:serialno"),
        (C::GetVar(V::Secure), b"getvar:secure"),
        (C::GetVar(V::Unlocked), b"getvar:unlocked"),
        (C::GetVar(V::CriticalUnlocked), b"getvar:critical-unlocked"),
        (C::GetVar(V::MaxDownloadSize), b"getvar:max-download-size"),
        (C::GetVar(V::MaxFetchSize), b"getvar:max-fetch-size"),
        (C::GetVar(V::CurrentSlot), b"getvar:current-slot"),
        (C::GetVar(V::SlotCount), b"getvar:slot-count"),
        (C::GetVar(V::IsUserspace), b"getvar:is-userspace"),
        (
            C::GetVar(V::SuperPartitionName),
            b"getvar:super-partition-name",
        ),
        (
            C::GetVar(V::SnapshotUpdateStatus),
            b"getvar:snapshot-update-status",
        ),
        (C::GetVar(V::Variant), b"getvar:variant"),
        (C::GetVar(V::HwRevision), b"getvar:hw-revision"),
        (C::GetVar(V::LogicalBlockSize), b"getvar:logical-block-size"),
        (C::GetVar(V::HasSlot("system")), b"getvar:has-slot:system"),
        (
            C::GetVar(V::PartitionSize("boot_a")),
            b"getvar:partition-size:boot_a",
        ),
        (
            C::GetVar(V::PartitionType("userdata")),
            b"getvar:partition-type:userdata",
        ),
        (
            C::GetVar(V::IsLogical("system_a")),
            b"getvar:is-logical:system_a",
        ),
        (
            C::GetVar(V::SlotSuccessful("a")),
            b"getvar:slot-successful:a",
        ),
        (
            C::GetVar(V::SlotUnbootable("b")),
            b"getvar:slot-unbootable:b",
        ),
        (
            C::GetVar(V::SlotRetryCount("_a")),
            b"getvar:slot-retry-count:_a",
        ),
        (C::GetVar(V::Other("version-os")), b"getvar:version-os"),
        (C::GetVar(V::Other("Oem-Var:x")), b"getvar:Oem-Var:x"),
        (C::Download(0x1234), b"download:00001234"),
        (C::Download(0xa0_0000), b"download:00a00000"),
        (C::Download(u32::MAX), b"download:ffffffff"),
        (C::Upload, b"upload"),
        (
            C::Fetch {
                partition: "boot_a",
                offset: Some(0),
                size: Some(0x10_0000),
            },
            b"fetch:boot_a:0x00000000:0x00100000",
        ),
        (
            C::Fetch {
                partition: "system_a",
                offset: Some(0x1_2345_6789),
                size: Some(0x800),
            },
            b"fetch:system_a:0x123456789:0x00000800",
        ),
        (
            C::Fetch {
                partition: "vendor_boot",
                offset: Some(0x1000),
                size: None,
            },
            b"fetch:vendor_boot:0x00001000",
        ),
        (
            C::Fetch {
                partition: "vendor_boot_b",
                offset: None,
                size: None,
            },
            b"fetch:vendor_boot_b",
        ),
        (C::Flash("boot_a"), b"flash:boot_a"),
        (C::Erase("userdata"), b"erase:userdata"),
        (C::SetActive("b"), b"set_active:b"),
        (C::Boot, b"boot"),
        (C::Continue, b"continue"),
        (C::Reboot(RebootTarget::System), b"reboot"),
        (C::Reboot(RebootTarget::Bootloader), b"reboot-bootloader"),
        (C::Reboot(RebootTarget::Fastboot), b"reboot-fastboot"),
        (C::Reboot(RebootTarget::Recovery), b"reboot-recovery"),
        (C::Oem("sha256 system_a"), b"oem sha256 system_a"),
        (C::Oem("device-info"), b"oem device-info"),
        (C::Flashing(FlashingAction::Lock), b"flashing lock"),
        (C::Flashing(FlashingAction::Unlock), b"flashing unlock"),
        (
            C::Flashing(FlashingAction::LockCritical),
            b"flashing lock_critical",
        ),
        (
            C::Flashing(FlashingAction::UnlockCritical),
            b"flashing unlock_critical",
        ),
        (
            C::Flashing(FlashingAction::GetUnlockAbility),
            b"flashing get_unlock_ability",
        ),
        (
            C::UpdateSuper {
                partition: "super",
                wipe: false,
            },
            b"update-super:super",
        ),
        (
            C::UpdateSuper {
                partition: "super",
                wipe: true,
            },
            b"update-super:super:wipe",
        ),
        (
            C::CreateLogicalPartition {
                partition: "product_a",
                size: 0,
            },
            b"create-logical-partition:product_a:0",
        ),
        (
            C::DeleteLogicalPartition("product_b"),
            b"delete-logical-partition:product_b",
        ),
        (
            C::ResizeLogicalPartition {
                partition: "system_a",
                size: 1_073_741_824,
            },
            b"resize-logical-partition:system_a:1073741824",
        ),
        (
            C::SnapshotUpdate(SnapshotUpdate::Status),
            b"snapshot-update:",
        ),
        (
            C::SnapshotUpdate(SnapshotUpdate::Cancel),
            b"snapshot-update:cancel",
        ),
        (
            C::SnapshotUpdate(SnapshotUpdate::Merge),
            b"snapshot-update:merge",
        ),
        (C::Gsi(GsiAction::Wipe), b"gsi:wipe"),
        (C::Gsi(GsiAction::Disable), b"gsi:disable"),
        (C::Gsi(GsiAction::Status), b"gsi:status"),
        // The README's example of a command a device does not know.
        (C::Unknown("powerdown"), b"powerdown"),
        (C::Unknown("signature"), b"signature"),
        (C::Unknown("reboot:bootloader"), b"reboot:bootloader"),
        (C::Unknown("flashing frobnicate"), b"flashing frobnicate"),
    ]
}

/// (response, its bytes) for every status.
fn responses() -> Vec<(Response, &'static [u8])> {
    vec![
        (Response::Okay(String::new()), b"OKAY"),
        (Response::Okay("0.4".into()), b"OKAY0.4"),
        (Response::Okay("0x10000000".into()), b"OKAY0x10000000"),
        (
            Response::Fail("Unknown variable".into()),
            b"FAILUnknown variable",
        ),
        (Response::Fail(String::new()), b"FAIL"),
        (Response::Data(0x1234), b"DATA00001234"),
        (Response::Data(0xa0_0000), b"DATA00a00000"),
        (Response::Data(u32::MAX), b"DATAffffffff"),
        (Response::Data(0), b"DATA00000000"),
        (Response::Info("erasing flash".into()), b"INFOerasing flash"),
        (Response::Info(String::new()), b"INFO"),
        (Response::Text("hello".into()), b"TEXThello"),
    ]
}

#[test]
fn every_command_encodes_to_its_literal_bytes() {
    for (command, bytes) in commands() {
        assert_eq!(command.encode(MAX).as_deref(), Ok(bytes), "{command:?}");
    }
}

#[test]
fn every_command_parses_from_its_literal_bytes() {
    for (command, bytes) in commands() {
        assert_eq!(
            Command::parse(bytes),
            Ok(command),
            "{}",
            bytes.escape_ascii()
        );
    }
}

#[test]
fn every_response_encodes_to_its_literal_bytes() {
    for (response, bytes) in responses() {
        assert_eq!(response.encode(), bytes, "{response:?}");
    }
}

#[test]
fn every_response_parses_from_its_literal_bytes() {
    for (response, bytes) in responses() {
        assert_eq!(
            Response::parse(bytes),
            Ok(response),
            "{}",
            bytes.escape_ascii()
        );
    }
}

#[test]
fn the_table_covers_every_variable_and_command_kind() {
    let table = commands();
    let has = |c: &Command<'_>| table.iter().any(|(t, _)| t == c);
    for var in Variable::plain().chain([Variable::All]) {
        assert!(has(&Command::GetVar(var)), "{var:?} missing");
    }
    let kinds: Vec<String> = Variable::qualified("x")
        .map(|v| v.qualifier().to_string())
        .collect();
    for kind in kinds {
        assert!(
            table
                .iter()
                .any(|(c, _)| matches!(c, Command::GetVar(v) if v.qualifier() == kind)),
            "{kind} missing"
        );
    }
    // Adding a command kind breaks this match until the table has one.
    let kind = |c: &Command<'_>| match c {
        Command::GetVar(_) => 0,
        Command::Download(_) => 1,
        Command::Upload => 2,
        Command::Fetch { .. } => 3,
        Command::Flash(_) => 4,
        Command::Erase(_) => 5,
        Command::SetActive(_) => 6,
        Command::Boot => 7,
        Command::Continue => 8,
        Command::Reboot(_) => 9,
        Command::Oem(_) => 10,
        Command::Flashing(_) => 11,
        Command::UpdateSuper { .. } => 12,
        Command::CreateLogicalPartition { .. } => 13,
        Command::DeleteLogicalPartition(_) => 14,
        Command::ResizeLogicalPartition { .. } => 15,
        Command::SnapshotUpdate(_) => 16,
        Command::Gsi(_) => 17,
        Command::Unknown(_) => 18,
    };
    let mut seen: Vec<usize> = table.iter().map(|(c, _)| kind(c)).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, (0..=18).collect::<Vec<_>>());
}

#[test]
fn accepted_one_way_only() {
    // What hosts and devices also send, read as the same thing (encoded canonically).
    let commands: &[(&[u8], Command<'_>)] = &[
        (
            b"fetch:boot_a:4096:16",
            Command::Fetch {
                partition: "boot_a",
                offset: Some(4096),
                size: Some(16),
            },
        ),
        (b"fetch:boot_a:0X10:0", {
            Command::Fetch {
                partition: "boot_a",
                offset: Some(16),
                size: Some(0),
            }
        }),
        (b"download:00A0000F", Command::Download(0xa0_000f)),
        (
            b"snapshot-update",
            Command::SnapshotUpdate(SnapshotUpdate::Status),
        ),
        (
            b"create-logical-partition:p:0x1000",
            Command::CreateLogicalPartition {
                partition: "p",
                size: 0x1000,
            },
        ),
        (b"set_active:_a", Command::SetActive("_a")),
        (b"oem  spaced  words ", Command::Oem(" spaced  words ")),
    ];
    for (bytes, command) in commands {
        assert_eq!(
            Command::parse(bytes).as_ref(),
            Ok(command),
            "{}",
            bytes.escape_ascii()
        );
    }
    let responses: &[(&[u8], Response)] = &[
        (b"DATAFFFFFFFF", Response::Data(u32::MAX)),
        // Some bootloaders send the C string's NUL; TEXT is NUL-terminated per the README.
        (b"DATA00001000\0", Response::Data(0x1000)),
        (b"TEXThello\0garbage", Response::Text("hello".into())),
        (b"OKAY\xffyes", Response::Okay("\u{fffd}yes".into())),
    ];
    for (bytes, response) in responses {
        assert_eq!(
            Response::parse(bytes).as_ref(),
            Ok(response),
            "{}",
            bytes.escape_ascii()
        );
    }
}

#[test]
fn malformed_commands_are_errors() {
    use ParseError as E;
    let missing = |command, what| E::MissingArgument { command, what };
    let cases: &[(&[u8], ParseError)] = &[
        (b"", E::Empty),
        (b"getvar", missing("getvar", "argument")),
        (b"getvar:", missing("getvar", "variable name")),
        (b"getvar:has-slot:", missing("getvar", "variable argument")),
        (b"download", missing("download", "argument")),
        (b"flash:", missing("flash", "name")),
        (b"erase", missing("erase", "argument")),
        (b"fetch:", missing("fetch", "partition")),
        (b"update-super:", missing("update-super", "partition")),
        (
            b"create-logical-partition:p",
            missing("create-logical-partition", "size"),
        ),
        (
            b"resize-logical-partition::10",
            missing("resize-logical-partition", "name"),
        ),
        (b"oem ", missing("oem", "arguments")),
        (b"oem   ", missing("oem", "arguments")),
        (b"\xff\xfe:", E::NotPrintable { byte: 0xff }),
        (b"getvar:product\n", E::NotPrintable { byte: b'\n' }),
        (b"flash:boot\0", E::NotPrintable { byte: 0 }),
        (b"flash:syst\xc3\xa9m", E::NotPrintable { byte: 0xc3 }),
    ];
    for (bytes, error) in cases {
        assert_eq!(
            Command::parse(bytes).as_ref(),
            Err(error),
            "{}",
            bytes.escape_ascii()
        );
    }
    let invalid = [
        &b"download:00a0000"[..],
        b"download:00a000000",
        b"download:0000123g",
        b"download:+0001234",
        b"download: 0001234",
        b"flash:boot:a",
        b"fetch:boot:zz",
        b"fetch:boot:0x:1",
        b"fetch:boot:010",
        b"fetch:boot:0:1:2",
        b"fetch:boot:0:99999999999999999999999",
        b"update-super:super:merge",
        b"create-logical-partition:p:-1",
        b"resize-logical-partition:p:1.5",
        b"snapshot-update:now",
        b"gsi:",
        b"gsi:on",
    ];
    for bytes in invalid {
        assert!(
            matches!(Command::parse(bytes), Err(E::InvalidArgument { .. })),
            "{}: {:?}",
            bytes.escape_ascii(),
            Command::parse(bytes)
        );
    }
}

#[test]
fn a_command_over_the_limit_is_refused_both_ways() {
    let long = format!("getvar:{}", "x".repeat(58));
    assert_eq!(long.len(), 65);
    assert_eq!(
        Command::parse(long.as_bytes()),
        Err(ParseError::TooLong { len: 65, max: 64 })
    );
    assert!(Command::parse_within(long.as_bytes(), 4096).is_ok());
    let name = "p".repeat(60);
    assert!(matches!(
        Command::Flash(&name).encode(64),
        Err(CommandError::TooLong {
            len: 66,
            max: 64,
            ..
        })
    ));
    assert_eq!(Command::Flash(&name).encode(4096).unwrap().len(), 66);
    // Exactly 64 bytes is allowed.
    let name = "p".repeat(58);
    let bytes = Command::Flash(&name).encode(64).unwrap();
    assert_eq!(bytes.len(), 64);
    assert_eq!(Command::parse(&bytes), Ok(Command::Flash(&name)));
}

#[test]
fn the_host_refuses_what_a_device_would_misparse() {
    for bad in ["", "a b", "sys\0tem", "boot\n", "x:y", "é"] {
        assert!(
            matches!(
                Command::Flash(bad).encode(MAX),
                Err(CommandError::InvalidArgument { .. })
            ),
            "{bad:?}"
        );
    }
    let refused = [
        Command::Oem("  "),
        Command::Oem("device-info\x07"),
        Command::GetVar(Variable::Other("")),
        Command::GetVar(Variable::Other("a b")),
        // Spelled as unknown but known: it would read back as `Product`.
        Command::GetVar(Variable::Other("product")),
        Command::GetVar(Variable::HasSlot("")),
        Command::GetVar(Variable::IsLogical("a:b")),
        Command::Fetch {
            partition: "boot",
            offset: None,
            size: Some(1),
        },
        Command::UpdateSuper {
            partition: "",
            wipe: true,
        },
        Command::CreateLogicalPartition {
            partition: "a b",
            size: 1,
        },
        Command::Unknown(""),
        Command::Unknown("reboot"),
        Command::Unknown("download:zz"),
        Command::Unknown("oem ok"),
        Command::Unknown("bad\tbyte"),
    ];
    for command in refused {
        assert!(
            matches!(
                command.encode(MAX),
                Err(CommandError::InvalidArgument { .. })
            ),
            "{command:?}"
        );
    }
}

#[test]
fn variables_read_their_names() {
    assert_eq!(Variable::from("is-userspace"), Variable::IsUserspace);
    assert_eq!(
        Variable::from("is-logical:system_a"),
        Variable::IsLogical("system_a")
    );
    assert_eq!(Variable::from("has-slot"), Variable::Other("has-slot"));
    assert_eq!(Variable::from("dmesg"), Variable::Other("dmesg"));
    assert_eq!(
        Variable::IsLogical("vendor_b").to_string(),
        "is-logical:vendor_b"
    );
    assert_eq!(Variable::plain().count(), 18);
}

#[test]
fn reboot_targets_and_flashing_actions_read_cli_words() {
    assert_eq!(
        RebootTarget::parse("bootloader"),
        Some(RebootTarget::Bootloader)
    );
    assert_eq!(RebootTarget::parse(""), Some(RebootTarget::System));
    assert_eq!(RebootTarget::parse("edl"), None);
    assert_eq!(
        FlashingAction::parse("unlock_critical"),
        Some(FlashingAction::UnlockCritical)
    );
    assert_eq!(FlashingAction::parse("unlock "), None);
}

#[test]
fn long_messages_are_cut_to_one_frame() {
    let frame = Response::Fail("x".repeat(300)).encode();
    assert_eq!(frame.len(), MAX_RESPONSE_LEN);
    assert_eq!(
        Response::parse(&frame),
        Ok(Response::Fail("x".repeat(MAX_MESSAGE_LEN)))
    );
    // The cut never splits a character: 251 ASCII bytes then a 2-byte 'é' leaves the 'é' out.
    let text = format!("{}é", "y".repeat(251));
    let frame = Response::Info(text).encode();
    assert_eq!(frame.len(), 4 + 251);
    assert!(std::str::from_utf8(&frame).is_ok());
}

#[test]
fn arbitrary_bytes_never_panic_and_what_parses_encodes_back() {
    // A small xorshift generator: deterministic, no extra dependency.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"getvar:download:flash:fetch:0x1aZ_- oem update-super:wipe\x00\xff";
    let table = commands();
    for round in 0..20_000 {
        let (_, seed) = table[round % table.len()];
        let mut bytes = seed.to_vec();
        for _ in 0..(next() % 4) {
            let at = (next() as usize) % (bytes.len() + 1);
            let b = alphabet[(next() as usize) % alphabet.len()];
            if next() % 2 == 0 && at < bytes.len() {
                bytes[at] = b;
            } else {
                bytes.insert(at, b);
            }
        }
        bytes.truncate((next() as usize) % 80);
        if let Ok(command) = Command::parse(&bytes) {
            // Whatever a device accepts, the host can say, and it means the same again.
            if let Ok(encoded) = command.encode(4096) {
                assert_eq!(Command::parse_within(&encoded, 4096), Ok(command));
            }
        }
    }
}

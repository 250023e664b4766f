use super::*;
use crate::config::PhonesFile;

fn faults(yaml: &str) -> Result<FaultScript, String> {
    let text = format!("phones:\n  - slot: 3\n    faults:\n{yaml}");
    PhonesFile::from_document(YamlDocument::from_text("/line/phones.yaml", text))
        .map(|f| f.phones[0].faults.clone())
        .map_err(|e| e.to_string())
}

#[test]
fn times() {
    let wait = |t: &str| parse_wait(t).map(|w| w.0);
    assert_eq!(wait("50ms").unwrap(), Some(Duration::from_millis(50)));
    assert_eq!(wait("2m").unwrap(), Some(Duration::from_secs(120)));
    assert_eq!(wait("ever").unwrap(), None);
    for bad in ["", "5", "5h", "ms", "-1s", "99999999999999999999s"] {
        assert!(wait(bad).is_err(), "{bad}");
    }
}

#[test]
fn every_answer_kind_loads_with_its_value() {
    let f = faults(
        "      answer:\n\
         \x20       - { on: \"getvar:product\", with: garbage }\n\
         \x20       - { on: \"flash:system_a\", with: too_long, length: 300 }\n\
         \x20       - { on: set_active, with: info_flood, every: 50ms }\n\
         \x20       - { on: oem, with: info_flood }\n\
         \x20       - { on: download, with: truncated, times: 1 }\n\
         \x20       - { on: erase, with: unknown_prefix }\n\
         \x20       - { on: download, with: data_size, size: 0x1000 }\n\
         \x20       - { on: flash, with: malformed }\n\
         \x20       - { on: \"getvar:max-download-size\", with: okay, text: \"0x0\" }\n\
         \x20       - { on: fetch, with: short_data, size: 100 }\n",
    )
    .unwrap();
    let with: Vec<&Answer> = f.answer.iter().map(|a| &a.with).collect();
    assert_eq!(
        with,
        [
            &Answer::Garbage,
            &Answer::TooLong(300),
            &Answer::InfoFlood(Duration::from_millis(50)),
            &Answer::InfoFlood(Duration::from_millis(100)),
            &Answer::Truncated,
            &Answer::UnknownPrefix,
            &Answer::DataSize(0x1000),
            &Answer::Malformed,
            &Answer::Okay("0x0".into()),
            &Answer::ShortData(100),
        ]
    );
    assert_eq!(f.answer[4].times, Some(1));
    assert_eq!(f.answer[1].on, "flash:system_a");
}

#[test]
fn set_active_pull_cable_sahara_and_packets_load() {
    let f = faults(
        "      set_active: lost_on_reboot\n\
         \x20     pull_cable: { at: next_reboot }\n\
         \x20     sahara: { with: absurd_read, offset: 0, length: 0x1000000000000000 }\n\
         \x20     firehose_packets: split 7\n",
    )
    .unwrap();
    assert_eq!(f.set_active, Some(SetActiveScript::LostOnReboot));
    assert_eq!(f.pull_cable, Some(PullCableScript::AtNextReboot));
    assert_eq!(
        f.sahara,
        Some(SaharaScript::AbsurdRead {
            offset: 0,
            length: 1 << 60
        })
    );
    assert_eq!(f.firehose_packets, Some(FirehosePackets::Split(7)));
    let f = faults(
        "      set_active: ignored\n\
         \x20     pull_cable: { on: \"flash:system_a\" }\n\
         \x20     sahara: { with: exec_length, length: 0xffffffff }\n\
         \x20     firehose_packets: merged\n",
    )
    .unwrap();
    assert_eq!(f.set_active, Some(SetActiveScript::Ignored));
    assert_eq!(
        f.pull_cable,
        Some(PullCableScript::On("flash:system_a".into()))
    );
    assert_eq!(f.sahara, Some(SaharaScript::AbsurdExecLength(u32::MAX)));
    assert_eq!(f.firehose_packets, Some(FirehosePackets::Merged));
    assert_eq!(
        faults("      sahara: { with: silent }\n").unwrap().sahara,
        Some(SaharaScript::Silent)
    );
}

/// Each mistake names the file, the line and the key, and says what to write.
#[test]
fn mistakes_in_the_new_keys_name_slot_key_and_fix() {
    let cases: &[(&str, &[&str])] = &[
        (
            "      answer: [{ on: download, with: data_size }]\n",
            &["phones[0].faults.answer[0]", "needs `size`"],
        ),
        (
            "      answer: [{ on: download, with: garbage, size: 4 }]\n",
            &["phones[0].faults.answer[0].size", "takes no value"],
        ),
        (
            "      answer: [{ on: download, with: too_long, size: 300 }]\n",
            &["answer[0].size", "takes only `length`"],
        ),
        (
            "      answer: [{ on: download, with: too_long, length: 1G }]\n",
            &["answer[0].length", "not a frame"],
        ),
        (
            "      answer: [{ on: download, with: data_size, size: 8G }]\n",
            &["answer[0].size", "eight hex digits"],
        ),
        (
            "      answer: [{ on: set_active, with: info_flood, every: ever }]\n",
            &["answer[0].every", "at least 1ms"],
        ),
        (
            "      answer: [{ on: \"\", with: truncated }]\n",
            &["answer[0].on", "no operation"],
        ),
        (
            "      answer: [{ on: download, with: lies }]\n",
            &["lies", ":4"],
        ),
        (
            "      set_active: sometimes\n",
            &["`sometimes`", "lost_on_reboot", "fail: [{ on: set_active"],
        ),
        (
            "      pull_cable: { at: lunch }\n",
            &["phones[0].faults.pull_cable.at", "next_reboot"],
        ),
        (
            "      pull_cable: { on: flash, at: next_reboot }\n",
            &["phones[0].faults.pull_cable", "exactly one"],
        ),
        (
            "      sahara: { with: absurd_read, length: 4 }\n",
            &["phones[0].faults.sahara", "needs `offset`"],
        ),
        (
            "      sahara: { with: silent, length: 4 }\n",
            &["phones[0].faults.sahara.length", "does not go"],
        ),
        (
            "      sahara: { with: exec_length, length: 8G }\n",
            &["sahara.length", "32-bit"],
        ),
        (
            "      firehose_packets: split 0\n",
            &["firehose_packets", "`split 7`"],
        ),
    ];
    for (yaml, wanted) in cases {
        let e = faults(yaml).unwrap_err();
        assert!(e.contains("/line/phones.yaml:"), "{yaml}: {e}");
        for w in *wanted {
            assert!(e.contains(w), "{yaml}: `{w}` missing from: {e}");
        }
    }
}

#[test]
fn a_phone_takes_a_bounded_number_of_rules() {
    let rules = "        - { on: getvar, with: garbage }\n".repeat(MAX_FAULT_RULES + 1);
    let e = faults(&format!("      answer:\n{rules}")).unwrap_err();
    assert!(
        e.contains("phones[0].faults") && e.contains("at most 64"),
        "{e}"
    );
    let rules = "        - { on: getvar, with: garbage }\n".repeat(MAX_FAULT_RULES);
    assert_eq!(
        faults(&format!("      answer:\n{rules}"))
            .unwrap()
            .answer
            .len(),
        MAX_FAULT_RULES
    );
}

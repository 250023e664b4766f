//! A phone that drops off the bus part-way through writing a named partition, scripted in a
//! phones file (`disconnect_during: [{ on: "flash:system_a", at: 40% }]`): the unit fails
//! DISCONNECTED, the rest of the batch passes, and the partition holds exactly the share of the
//! write the phone made before it left.
//!
//! What the percentage counts is what the phone knows when it starts writing: for fastboot the
//! data of the image staged for that `flash:` (a sparse image's RAW and FILL chunks), for
//! Firehose the sectors of that `<program>` (named by the GPT partition its first sector is in).

use std::fs::File;

use flashgate_scenarios::batch::DemoStation;
use protocols::sparse::{ChunkKind, SparseReader};
use station::config::{PhonesFile, YamlDocument};
use station::verdict::Verdict;

const EEA: &str = "WO-DEMO-EEA";

/// The batch of `phones_yaml` on the demo station, run to its last verdict; returns the outcome
/// and the phone on slot 1.
fn run(
    demo: &DemoStation,
    phones_yaml: &str,
) -> (
    flashgate_scenarios::batch::BatchOutcome,
    protocols::sim::Phone,
) {
    let scripted = demo.phones(EEA, phones_yaml);
    let phone = scripted.rig.units[0].phone().clone();
    (scripted.run(Vec::new()), phone)
}

/// The demo 00EEA system image's data chunks as `(offset, bytes)` in file order, and the
/// expanded length.
fn data_chunks(demo: &DemoStation) -> (Vec<(u64, Vec<u8>)>, u64) {
    let file = File::open(demo.image("00EEA/system.img")).unwrap();
    let mut sparse = SparseReader::new(std::io::BufReader::new(file)).unwrap();
    let block = sparse.header().blk_sz;
    let expanded = sparse.expanded_len();
    let mut chunks = Vec::new();
    while let Some(chunk) = sparse.next_chunk().unwrap() {
        let offset = chunk.expanded_offset(block);
        let len = chunk.expanded_len(block) as usize;
        match chunk.kind {
            ChunkKind::Raw { .. } => {
                let mut data = vec![0u8; len];
                let mut filled = 0;
                while filled < len {
                    filled += sparse.read_raw(&mut data[filled..]).unwrap();
                }
                chunks.push((offset, data));
            }
            ChunkKind::Fill { value, .. } => {
                let pattern = value.to_le_bytes();
                chunks.push((offset, pattern.iter().copied().cycle().take(len).collect()));
            }
            _ => {}
        }
    }
    (chunks, expanded)
}

/// A fastboot phone leaves 40 % into writing `system_a`: DISCONNECTED, its neighbour passes,
/// and `system_a` holds the image's first 40 % of data bytes and nothing after them.
#[test]
fn a_fastboot_phone_dropping_off_at_40_percent_of_the_system_flash_fails_disconnected() {
    let demo = DemoStation::new();
    let (outcome, phone) = run(
        &demo,
        "phones:\n  - slot: 1\n    faults:\n      disconnect_during: [{ on: \"flash:system_a\", at: 40% }]\n  - slot: 2\n",
    );
    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(2), Verdict::Pass);
    let (code, sentence) = outcome.failure_on(1);
    assert_eq!(code, "DISCONNECTED", "{sentence}");
    assert!(sentence.contains("flash system"), "{sentence}");

    let (chunks, expanded) = data_chunks(&demo);
    let data: u64 = chunks.iter().map(|(_, d)| d.len() as u64).sum();
    let mut budget = data * 40 / 100;
    assert!(budget > 0 && budget < data);
    let mut expected = vec![0u8; expanded as usize];
    for (offset, bytes) in &chunks {
        let take = (bytes.len() as u64).min(budget) as usize;
        let at = *offset as usize;
        expected[at..at + take].copy_from_slice(&bytes[..take]);
        budget -= take as u64;
    }
    let mut held = vec![0u8; expanded as usize];
    phone.read_partition("system_a", 0, &mut held).unwrap();
    let first_difference = held.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(
        first_difference, None,
        "system_a holds the first 40 % of the image's data and nothing more"
    );
}

/// The same over EDL: the programmer leaves 40 % into the first `<program>` that writes
/// `system_a`; the unit fails (the link is gone) and the other EDL phone passes.
#[test]
fn an_edl_phone_dropping_off_during_a_system_program_fails_and_the_other_passes() {
    let demo = DemoStation::new();
    let (outcome, phone) = run(
        &demo,
        "phones:\n  - slot: 1\n    mode: edl\n    faults:\n      disconnect_during: [{ on: \"program:system_a\", at: 40% }]\n  - { slot: 2, mode: edl }\n",
    );
    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(2), Verdict::Pass);
    let (code, sentence) = outcome.failure_on(1);
    assert_eq!(code, "DISCONNECTED", "{sentence}");

    // The station programs a sparse image chunk by chunk: the first `<program>` in system_a is
    // the first data chunk, of which the first 40 % reached storage.
    let (chunks, _) = data_chunks(&demo);
    let (offset, first) = &chunks[0];
    let kept = first.len() * 40 / 100;
    let mut held = vec![0u8; first.len()];
    phone
        .read_partition("system_a", *offset, &mut held)
        .unwrap();
    assert_eq!(&held[..kept], &first[..kept]);
    assert!(
        held[kept..].iter().all(|&b| b == 0),
        "nothing past 40 % of the program was written"
    );
}

/// `on:` must name a write.
#[test]
fn a_disconnect_during_an_operation_that_writes_nothing_is_refused_with_its_key() {
    let error = PhonesFile::from_document(YamlDocument::from_text(
        "phones.yaml",
        "phones:\n  - slot: 1\n    faults:\n      disconnect_during: [{ on: \"getvar:product\", at: 40% }]\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(error.contains("disconnect_during"), "{error}");
    assert!(error.contains("writes nothing"), "{error}");
    let error = PhonesFile::from_document(YamlDocument::from_text(
        "phones.yaml",
        "phones:\n  - slot: 1\n    faults:\n      disconnect_during: [{ on: flash, at: 140% }]\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(error.contains("0% to 100%"), "{error}");
}

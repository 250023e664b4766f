//! RAM-dump collection from a crashed phone: flashgate's Sahara host against the simulated ROM
//! in memory-debug mode (32- and 64-bit tables, packet and stream links), with the limits and
//! filename checks that keep a hostile device from filling or escaping the output directory.

use std::time::Duration;

use flashgate_scenarios::{spawn_device, DeviceThread};
use protocols::progress::NoProgress;
use protocols::sahara::memory_table::TableFormat;
use protocols::sahara::ramdump::{RamdumpLimits, RamdumpReport, RegionFilter};
use protocols::sahara::{SaharaError, SaharaHost, SaharaTimeouts};
use protocols::sim::sahara::{
    pattern, SaharaDevice, SaharaIdentity, SaharaServeOutcome, SimMemoryDump,
};
use protocols::transport::memory::{pair_with, MemoryLink};
use protocols::transport::Framing;
use sha2::{Digest, Sha256};

const TIMEOUTS: SaharaTimeouts = SaharaTimeouts {
    hello: Duration::from_millis(200),
    packet: Duration::from_secs(3),
    write: Duration::from_secs(3),
};

fn link(framing: Framing) -> (MemoryLink, MemoryLink) {
    let (host, dev, _c) = pair_with(
        "edl",
        framing,
        Some(512).filter(|_| framing == Framing::Packets),
    );
    (host, dev)
}

fn spawn(device: SaharaDevice, dev: MemoryLink) -> DeviceThread<SaharaServeOutcome> {
    spawn_device(dev, move |dev| {
        device.serve(dev).expect("simulated ROM failed")
    })
}

fn collect(
    dump: SimMemoryDump,
    framing: Framing,
    filter: &RegionFilter,
    limits: &RamdumpLimits,
) -> (
    tempfile::TempDir,
    Result<RamdumpReport, SaharaError>,
    SaharaServeOutcome,
) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump");
    std::fs::create_dir(&out).unwrap();
    let (mut host, dev) = link(framing);
    let rom = SaharaDevice::crashed(3, SaharaIdentity::default(), dump);
    let device = spawn(rom, dev);
    let report = SaharaHost::with_timeouts(&mut host, TIMEOUTS).collect_ramdump(
        &out,
        filter,
        limits,
        &NoProgress,
    );
    drop(host);
    (dir, report, device.join().unwrap())
}

fn assert_collected_exactly(dump: &SimMemoryDump, report: &RamdumpReport, names: &[&str]) {
    let got: Vec<&str> = report
        .collected
        .iter()
        .map(|c| c.region.filename.as_str())
        .collect();
    assert_eq!(got, names);
    for c in &report.collected {
        let want = dump.region_bytes(&c.region.filename).unwrap();
        let written = std::fs::read(&c.path).unwrap();
        assert!(written == want, "{} holds the region", c.path.display());
        assert_eq!(c.sha256, <[u8; 32]>::from(Sha256::digest(want)));
    }
}

#[test]
fn a_64_bit_rom_on_usb_gives_every_region_then_resets() {
    let dump = SimMemoryDump::small(TableFormat::Bits64);
    let (_dir, report, outcome) = collect(
        dump.clone(),
        Framing::Packets,
        &RegionFilter::default(),
        &RamdumpLimits::default(),
    );
    let report = report.unwrap();
    assert_eq!(report.format, TableFormat::Bits64);
    assert_eq!(report.version, Some(3));
    assert_eq!(report.table, dump.table);
    // DDR is 600 KiB + 100: one 512 KiB read (a multiple of 512, so the ROM adds a ZLP) and a
    // partial one.
    assert_collected_exactly(&dump, &report, &["DDRCS0.BIN", "OCIMEM.BIN", "CODERAM.BIN"]);
    assert!(report.skipped.is_empty());
    assert!(report.reset_acknowledged);
    assert_eq!(outcome, SaharaServeOutcome::Reset);
}

#[test]
fn a_32_bit_rom_on_a_serial_stream_with_a_filter() {
    let dump = SimMemoryDump::small(TableFormat::Bits32);
    let filter = RegionFilter {
        names: vec!["ocimem".into(), "CODERAM.BIN".into()],
        save_preferred_only: false,
    };
    let (_dir, report, outcome) = collect(
        dump.clone(),
        Framing::Stream,
        &filter,
        &RamdumpLimits::default(),
    );
    let report = report.unwrap();
    assert_eq!(report.format, TableFormat::Bits32);
    assert_collected_exactly(&dump, &report, &["OCIMEM.BIN", "CODERAM.BIN"]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].0.filename, "DDRCS0.BIN");
    assert_eq!(outcome, SaharaServeOutcome::Reset);

    // save_pref only: just DDR.
    let filter = RegionFilter {
        names: vec![],
        save_preferred_only: true,
    };
    let (_dir, report, _) = collect(
        dump.clone(),
        Framing::Packets,
        &filter,
        &RamdumpLimits::default(),
    );
    assert_collected_exactly(&dump, &report.unwrap(), &["DDRCS0.BIN"]);
}

#[test]
fn hostile_entries_are_skipped_with_reasons_and_nothing_leaves_the_directory() {
    let mut dump = SimMemoryDump::small(TableFormat::Bits64);
    dump.add_region(
        "escape",
        "../ESCAPE.BIN",
        true,
        0x9000_0000,
        pattern(0x9000_0000, 512),
    );
    dump.add_region(
        "subdir",
        "X/ESCAPE.BIN",
        true,
        0x9080_0000,
        pattern(0x9080_0000, 512),
    );
    dump.add_region(
        "dup",
        "ocimem.bin",
        true,
        0x9100_0000,
        pattern(0x9100_0000, 512),
    );
    // Announced but not backed: the ROM refuses the read.
    dump.table
        .push(protocols::sahara::memory_table::MemoryRegion {
            save_preferred: true,
            address: 0xA000_0000,
            length: 8192,
            description: "gone".into(),
            filename: "GONE.BIN".into(),
        });
    // A region far larger than the host accepts.
    dump.table
        .push(protocols::sahara::memory_table::MemoryRegion {
            save_preferred: true,
            address: 0x1_0000_0000,
            length: 1 << 40,
            description: "huge".into(),
            filename: "HUGE.BIN".into(),
        });
    let limits = RamdumpLimits {
        max_region_bytes: 1 << 20,
        ..Default::default()
    };
    let (dir, report, outcome) = collect(
        dump.clone(),
        Framing::Packets,
        &RegionFilter::default(),
        &limits,
    );
    let report = report.unwrap();
    assert_collected_exactly(&dump, &report, &["DDRCS0.BIN", "OCIMEM.BIN", "CODERAM.BIN"]);
    let reason = |name: &str| {
        report
            .skipped
            .iter()
            .find(|(r, _)| r.filename == name)
            .map(|(_, why)| why.clone())
            .unwrap_or_else(|| panic!("{name} not skipped"))
    };
    assert!(reason("../ESCAPE.BIN").contains("starts with a dot"));
    assert!(reason("X/ESCAPE.BIN").contains("contains '/'"));
    assert!(reason("ocimem.bin").contains("already written"));
    assert!(
        reason("GONE.BIN").contains("INVALID_MEMORY_READ"),
        "{}",
        reason("GONE.BIN")
    );
    assert!(reason("HUGE.BIN").contains("region limit"));
    assert!(!dir.path().join("ESCAPE.BIN").exists());
    assert!(!dir.path().join("dump").join("X").exists());
    assert!(!dir.path().join("dump").join("GONE.BIN").exists());
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(written.len(), 1, "only the output directory");
    assert_eq!(outcome, SaharaServeOutcome::Reset);
}

#[test]
fn a_table_over_the_limit_and_a_rom_not_in_memory_debug_are_errors() {
    let limits = RamdumpLimits {
        max_table_bytes: 100,
        ..Default::default()
    };
    let (_dir, report, _) = collect(
        SimMemoryDump::small(TableFormat::Bits64),
        Framing::Packets,
        &RegionFilter::default(),
        &limits,
    );
    let err = report.unwrap_err();
    assert!(
        matches!(err, SaharaError::MemoryTable { .. }) && err.to_string().contains("192"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (mut host, dev) = link(Framing::Packets);
    let device = spawn(SaharaDevice::new(2, SaharaIdentity::default()), dev);
    let err = SaharaHost::with_timeouts(&mut host, TIMEOUTS)
        .collect_ramdump(
            dir.path(),
            &RegionFilter::default(),
            &RamdumpLimits::default(),
            &NoProgress,
        )
        .unwrap_err();
    assert!(
        matches!(err, SaharaError::NotMemoryDebug { mode: 0, .. }),
        "{err}"
    );
    drop(host);
    device.join().unwrap();
}

//! The Firehose actions of `flashgate edl`: flash, read, digest, printgpt, reset. Each uploads
//! the programmer (or finds it running), configures it, and does one thing.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use protocols::firehose::edl::{start, EdlSession};
use protocols::firehose::gpt_lookup::PartitionLocation;
use protocols::firehose::{flash, package, FirehoseConfig, PowerMode, StorageKind};
use protocols::progress::{ProgressEvent, ProgressSink};
use protocols::transport::Transport;
use sha2::{Digest, Sha256};

use super::{programmer_images, sahara_timeouts, Action, Args};
use crate::output_file::OutputFile;

pub fn parse_storage(text: &str) -> Result<StorageKind, String> {
    match StorageKind::parse(text) {
        Some(k @ (StorageKind::Ufs | StorageKind::Emmc)) => Ok(k),
        _ => Err(format!("`{text}` is not a storage type: use ufs or emmc")),
    }
}

/// Device log lines go to the log (visible with -v); each step gets one line on stderr.
struct ConsoleProgress;

impl ProgressSink for ConsoleProgress {
    fn event(&self, event: ProgressEvent<'_>) {
        match event {
            ProgressEvent::DeviceMessage { text } => tracing::info!(target: "device", "{text}"),
            ProgressEvent::StepStarted { step, total_bytes } if total_bytes > 0 => {
                eprintln!("{step}: {total_bytes} bytes");
            }
            _ => {}
        }
    }
}

type Session = EdlSession<Box<dyn Transport>>;

fn open_session(link: Box<dyn Transport>, args: &Args) -> anyhow::Result<Session> {
    let images = programmer_images(args)?;
    let config = FirehoseConfig {
        storage: args.storage,
        max_payload: args.max_payload,
        payload_cap: Some(args.max_payload_cap),
        ..Default::default()
    };
    let session = start(
        link,
        &images,
        sahara_timeouts(args),
        config,
        Arc::new(ConsoleProgress),
    )?;
    let configured = &session.configure;
    tracing::info!(
        "programmer configured: {} storage, {}-byte sectors, payload {} bytes (programmer \
         supports {}; {} configure exchange(s))",
        args.storage,
        configured.sector_size,
        configured.payload_size,
        configured
            .device_supported
            .map_or("an unstated size".to_owned(), |s| format!("{s} bytes")),
        configured.exchanges
    );
    Ok(session)
}

fn locate(session: &mut Session, label: &str) -> anyhow::Result<PartitionLocation> {
    let fh = &mut session.firehose;
    let luns = fh.lun_count();
    let found = fh.find_partition(label, 0..luns)?;
    if let Some(damage) = &found.primary_gpt_damage {
        eprintln!(
            "warning: LUN {}: primary GPT is damaged ({damage}); `{label}` was found through the \
             backup GPT",
            found.lun
        );
    }
    Ok(found)
}

pub fn run(link: Box<dyn Transport>, args: &Args) -> anyhow::Result<ExitCode> {
    // Load the package before touching the phone: a broken package must not cost an upload.
    let package = match &args.action {
        Action::Flash { files } => Some(
            package::load(files, &flash::probe_sparse).context("the package cannot be flashed")?,
        ),
        _ => None,
    };
    let mut session = open_session(link, args)?;
    match &args.action {
        Action::Flash { .. } => {
            let package = package.context("package")?;
            for (origin, label) in &package.skipped {
                eprintln!("{origin}: {label} has no file; left as it is");
            }
            let summary = session.firehose.flash_package(&package)?;
            println!(
                "flashed {} programs ({} bytes), {} erases, {} patches{}",
                summary.programs,
                summary.bytes_sent,
                summary.erases,
                summary.patches,
                summary
                    .bootable_lun
                    .map_or(String::new(), |l| format!("; LUN {l} marked bootable"))
            );
        }
        Action::Read { label, out } => {
            let found = locate(&mut session, label)?;
            let file = OutputFile::create(out)?;
            let digest = {
                let mut writer = HashingWriter {
                    inner: BufWriter::with_capacity(1 << 20, file.file()),
                    hasher: Sha256::new(),
                };
                session.firehose.read_sectors(
                    found.lun,
                    found.first_sector(),
                    found.num_sectors(),
                    &mut writer,
                )?;
                writer
                    .inner
                    .flush()
                    .with_context(|| format!("cannot write {}", out.display()))?;
                hex::encode(writer.hasher.finalize())
            };
            file.commit()?;
            println!(
                "{label}: LUN {} sectors {}..={} ({} bytes) -> {}\nsha256 {}",
                found.lun,
                found.partition.first_lba,
                found.partition.last_lba,
                found.size_bytes(),
                out.display(),
                digest
            );
        }
        Action::Digest { label } => {
            let found = locate(&mut session, label)?;
            let digest = session.firehose.sha256_digest(
                found.lun,
                &found.first_sector().to_string(),
                found.num_sectors(),
            )?;
            println!("{}  {label}", hex::encode(digest));
        }
        Action::Printgpt => {
            let fh = &mut session.firehose;
            let luns = fh.lun_count();
            let mut any = false;
            for lun in 0..luns {
                match fh.read_lun_gpt(lun) {
                    Ok(table) => {
                        any = true;
                        if let Some(damage) = &table.primary_damage {
                            eprintln!("warning: LUN {lun}: primary GPT is damaged ({damage}); showing the backup GPT");
                        }
                        let header = &table.header;
                        println!(
                            "LUN {lun}: {} GPT at LBA {}, disk GUID {}, usable LBAs {}..={}, {} partitions",
                            table.copy(),
                            header.my_lba,
                            header.disk_guid,
                            header.first_usable_lba,
                            header.last_usable_lba,
                            table.partitions.len()
                        );
                        for p in &table.partitions {
                            println!(
                                "  {:>3} {:<24} {:>10} {:>10} {:>12} bytes  attrs 0x{:016x}",
                                p.index,
                                p.name,
                                p.first_lba,
                                p.last_lba,
                                p.size_bytes(fh.sector_size() as u32),
                                p.attributes
                            );
                        }
                    }
                    Err(e) => eprintln!("{e}"),
                }
            }
            if !any {
                bail!("no LUN has a readable GPT");
            }
        }
        Action::Reset => {
            session.firehose.power(PowerMode::Reset, 0)?;
            println!("reset requested; the phone leaves EDL");
        }
        Action::Info | Action::Upload | Action::Ramdump { .. } => {
            bail!("internal: Sahara action routed to Firehose")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Hash what is written, so a read-back file's digest costs no second pass.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use clap::Parser;
    use protocols::sim::edl::{serve, EdlOutcome, EdlSimConfig};
    use protocols::sim::firehose::FirehoseOutcome;
    use protocols::sim::sahara_elf::programmer_elf;
    use protocols::sim::Phone;
    use protocols::sparse::SparseWriter;
    use protocols::transport::pty::PtyDevice;

    use super::super::{open_target, Args};
    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(tty: &Path, programmer: &Path, action: &[&str]) -> Args {
        let target = format!("serial:{}", tty.display());
        let argv = ["edl", "-t", &target, "-p", programmer.to_str().unwrap()];
        Cli::try_parse_from(argv.iter().copied().chain(action.iter().copied()))
            .unwrap()
            .args
    }

    fn run_action(tty: &Path, programmer: &Path, action: &[&str]) -> anyhow::Result<ExitCode> {
        let a = args(tty, programmer, action);
        run(open_target(&a.target)?, &a)
    }

    #[test]
    fn flash_read_digest_printgpt_reset_against_a_simulated_phone_on_a_pty() {
        let dir = tempfile::tempdir().unwrap();
        let programmer = dir.path().join("prog.elf");
        let elf = programmer_elf(b"edl cli test programmer");
        std::fs::write(&programmer, &elf).unwrap();
        let phone = Phone::builder()
            .slots(&[])
            .partition("boot", 1 << 20)
            .partition("system", 4 << 20)
            .accept_programmer_bytes(&elf)
            .build()
            .unwrap();
        let (boot_lba, system_lba) = {
            let s = phone.lock();
            (
                s.storage.partition("boot").unwrap().first_lba,
                s.storage.partition("system").unwrap().first_lba,
            )
        };
        // Package: a raw boot image, a sparse system image (RAW, FILL, DONT_CARE), a patch.
        let boot: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("boot.img"), &boot).unwrap();
        let mut sparse = SparseWriter::new(
            std::fs::File::create(dir.path().join("system.img")).unwrap(),
            4096,
            8,
            3,
        )
        .unwrap();
        sparse.write_raw(&[0x5a; 2 * 4096]).unwrap();
        sparse.write_fill(0x1234_5678, 2).unwrap();
        sparse.write_dont_care(4).unwrap();
        sparse.finish().unwrap();
        let mut system = vec![0x5au8; 2 * 4096];
        system.extend([0x78u8, 0x56, 0x34, 0x12].repeat(2 * 1024));
        std::fs::write(
            dir.path().join("rawprogram0.xml"),
            format!(
                r#"<?xml version="1.0" ?>
<data>
  <program SECTOR_SIZE_IN_BYTES="4096" file_sector_offset="0" filename="boot.img" label="boot" num_partition_sectors="256" physical_partition_number="0" sparse="false" start_sector="{boot_lba}"/>
  <program SECTOR_SIZE_IN_BYTES="4096" file_sector_offset="0" filename="system.img" label="system" num_partition_sectors="1024" physical_partition_number="0" sparse="true" start_sector="{system_lba}"/>
</data>
"#
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("patch0.xml"),
            format!(
                r#"<?xml version="1.0" ?>
<patches>
  <patch SECTOR_SIZE_IN_BYTES="4096" byte_offset="8" filename="DISK" physical_partition_number="0" size_in_bytes="4" start_sector="{boot_lba}" value="CRC32({system_lba},4096)" what="test patch"/>
</patches>
"#
            ),
        )
        .unwrap();
        let mut boot_expected = boot.clone();
        let crc = crc32fast::hash(&system[..4096]);
        boot_expected[8..12].copy_from_slice(&crc.to_le_bytes());

        let tty = dir.path().join("ttyEDL");
        let mut pty = PtyDevice::create(Some(&tty)).unwrap();
        let device_phone = phone.clone();
        let device = std::thread::spawn(move || {
            let mut config = EdlSimConfig::new(2);
            config.rom.host_timeout = Duration::from_secs(20);
            serve(&mut pty, &device_phone, &config).unwrap()
        });

        let rawprogram = dir.path().join("rawprogram0.xml");
        let patch = dir.path().join("patch0.xml");
        // Patch file first on the command line: its patches still run after the programs.
        run_action(
            &tty,
            &programmer,
            &[
                "flash",
                patch.to_str().unwrap(),
                rawprogram.to_str().unwrap(),
            ],
        )
        .unwrap();
        let mut back = vec![0u8; boot.len()];
        phone.read_partition("boot", 0, &mut back).unwrap();
        assert_eq!(back, boot_expected);
        let mut sys = vec![0u8; system.len()];
        phone.read_partition("system", 0, &mut sys).unwrap();
        assert_eq!(sys, system);

        // The programmer keeps running between invocations: Sahara is skipped.
        let out = dir.path().join("system.bin");
        run_action(
            &tty,
            &programmer,
            &["read", "system", out.to_str().unwrap()],
        )
        .unwrap();
        let read = std::fs::read(&out).unwrap();
        assert_eq!(read.len(), 4 << 20);
        assert_eq!(&read[..system.len()], &system[..]);
        run_action(&tty, &programmer, &["digest", "system"]).unwrap();
        run_action(&tty, &programmer, &["printgpt"]).unwrap();
        let err = run_action(
            &tty,
            &programmer,
            &["read", "vendor", out.to_str().unwrap()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("vendor"), "{err}");
        run_action(&tty, &programmer, &["reset"]).unwrap();
        assert_eq!(
            device.join().unwrap(),
            EdlOutcome::Programmer(FirehoseOutcome::Reset)
        );
    }

    #[test]
    fn a_broken_package_fails_before_the_phone_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let xml = dir.path().join("rawprogram0.xml");
        std::fs::write(&xml, "<data>\n<program filename=\"../escape.img\" label=\"x\" SECTOR_SIZE_IN_BYTES=\"4096\" physical_partition_number=\"0\" num_partition_sectors=\"1\" start_sector=\"0\"/>\n</data>\n").unwrap();
        // No device behind the target at all: the package error must come first.
        let tty = dir.path().join("nothing");
        let a = args(
            &tty,
            &dir.path().join("p.elf"),
            &["flash", xml.to_str().unwrap()],
        );
        let pty = PtyDevice::create(Some(&tty)).unwrap();
        let err = run(open_target(&a.target).unwrap(), &a).unwrap_err();
        assert!(
            format!("{err:#}").contains("leaves the package directory"),
            "{err:#}"
        );
        drop(pty);
    }
}

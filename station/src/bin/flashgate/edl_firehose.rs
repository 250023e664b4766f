//! The Firehose actions of `flashgate edl`: flash, read, digest, printgpt, reset. Each uploads
//! the programmer (or finds it running), configures it, and does one thing.

use std::fs::File;
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
        ..Default::default()
    };
    let session = start(
        link,
        &images,
        sahara_timeouts(args),
        config,
        Arc::new(ConsoleProgress),
    )?;
    tracing::info!(
        "programmer configured: {} storage, {}-byte sectors, payload {} bytes",
        args.storage,
        session.configure.sector_size,
        session.configure.payload_size
    );
    Ok(session)
}

fn locate(session: &mut Session, label: &str) -> anyhow::Result<PartitionLocation> {
    let fh = &mut session.firehose;
    let luns = fh.lun_count();
    Ok(fh.find_partition(label, 0..luns)?)
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
            let file =
                File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
            let mut writer = HashingWriter {
                inner: BufWriter::with_capacity(1 << 20, file),
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
            println!(
                "{label}: LUN {} sectors {}..={} ({} bytes) -> {}\nsha256 {}",
                found.lun,
                found.partition.first_lba,
                found.partition.last_lba,
                found.size_bytes(),
                out.display(),
                hex::encode(writer.hasher.finalize())
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
                match fh.read_primary_gpt(lun) {
                    Ok((header, partitions)) => {
                        any = true;
                        println!(
                            "LUN {lun}: disk GUID {}, usable LBAs {}..={}, {} partitions",
                            header.disk_guid,
                            header.first_usable_lba,
                            header.last_usable_lba,
                            partitions.len()
                        );
                        for p in partitions {
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
                    Err(e) => eprintln!("LUN {lun}: {e}"),
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
        Action::Info | Action::Upload => bail!("internal: Sahara action routed to Firehose"),
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

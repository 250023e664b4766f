//! `flashgate sim edl`: one simulated phone in Qualcomm EDL on a pseudo-terminal, as a real
//! phone's QDLoader tty: the boot ROM's Sahara, then the programmer's Firehose, over LUN files
//! in DIR. The phone is on a deep-flash cable (its boot chain ends in EDL): after a `power
//! reset` it boots straight back into the ROM, so `flashgate edl …` can run again; `power off`
//! ends it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use protocols::sahara::memory_table::TableFormat;
use protocols::sim::edl::{EdlOutcome, EdlSimConfig};
use protocols::sim::firehose::FirehoseSimConfig;
use protocols::sim::host::stream::serve_edl;
use protocols::sim::sahara::{SaharaDevice, SaharaIdentity, SimMemoryDump};
use protocols::sim::sahara_elf::programmer_elf;
use protocols::sim::{Phone, PhoneMode};
use protocols::transport::pty::PtyDevice;
use sha2::{Digest, Sha256};

use crate::byte_size::parse_byte_size;

#[derive(clap::Args)]
pub struct EdlArgs {
    /// Create this symlink to the pty; hosts open it as a serial port (`--target serial:PATH`).
    #[arg(long, value_name = "PATH", required_unless_present = "functionfs")]
    pty: Option<PathBuf>,
    #[command(flatten)]
    usb: super::usb::UsbArgs,
    /// With --functionfs: after a Firehose `power reset` the phone boots into its bootloader
    /// and re-enumerates as a fastboot device (default: back in EDL).
    #[arg(long, requires = "functionfs")]
    reset_to_fastboot: bool,
    /// With --reset-to-fastboot: partitions the bootloader's `fetch:` may read (repeatable;
    /// `all` for any, as a factory bootloader that lets the station read back what it wrote;
    /// `none` for a production bootloader without the command).
    #[arg(
        long = "fetch-allow",
        value_name = "NAME",
        requires = "reset_to_fastboot"
    )]
    fetch_allow: Vec<String>,
    /// Directory for the partition and LUN files (kept across restarts).
    #[arg(long, value_name = "DIR")]
    storage: PathBuf,
    /// Phone serial (also seeds the Sahara chip serial and the GPT GUIDs).
    #[arg(long)]
    serial: Option<String>,
    /// Sector size of LUN 0: 4096 (UFS) or 512 (eMMC).
    #[arg(long, default_value_t = 4096)]
    sector_size: u32,
    /// Size of LUN 0 in bytes (suffixes K, M, G); default: just fits the partitions.
    #[arg(long, value_name = "BYTES", value_parser = parse_byte_size)]
    lun_size: Option<u64>,
    /// A programmer this phone's secure boot accepts (repeatable); any other is refused with
    /// an authentication failure, as on a real secure-boot phone.
    #[arg(
        long = "programmer",
        value_name = "FILE",
        required_unless_present = "demo_programmer"
    )]
    programmers: Vec<PathBuf>,
    /// Write a simulated programmer ELF to FILE and accept it (for trying the EDL commands
    /// without a vendor programmer).
    #[arg(long, value_name = "FILE")]
    demo_programmer: Option<PathBuf>,
    /// A partition NAME=SIZE on LUN 0 (repeatable; names are used as given). Default: a
    /// typical A/B layout.
    #[arg(long = "partition", value_name = "NAME=SIZE")]
    partitions: Vec<String>,
    /// Sahara protocol version of the boot ROM (1, 2 or 3).
    #[arg(long, default_value_t = 2)]
    sahara_version: u32,
    /// The phone has crashed: its ROM boots in Sahara memory-debug mode and offers a small
    /// memory table (DDR, OCIMEM, CODE RAM) for `flashgate edl ramdump`, every boot, until the
    /// process ends (as a phone stays in crash-dump mode until it is power-cycled). The
    /// regions' SHA-256 are printed at start, to check a collected dump against.
    #[arg(long)]
    crashed: bool,
    /// Largest MaxPayloadSizeToTargetInBytes the programmer accepts.
    #[arg(long, value_name = "BYTES", value_parser = parse_byte_size, default_value = "1M")]
    max_payload: u64,
    /// Milliseconds the programmer takes to start after Sahara's DONE before its first log
    /// (real programmers: tens of ms or more; hosts such as qdlrs drain the link meanwhile).
    #[arg(long, value_name = "MS", default_value_t = protocols::sim::firehose::DEFAULT_PROGRAMMER_BOOT_TIME.as_millis() as u64)]
    programmer_boot_ms: u64,
    #[command(flatten)]
    script: super::PhoneFileArgs,
}

fn build_phone(args: &EdlArgs) -> anyhow::Result<Phone> {
    if !matches!(args.sector_size, 512 | 4096) {
        bail!("--sector-size must be 512 (eMMC) or 4096 (UFS)");
    }
    std::fs::create_dir_all(&args.storage)
        .with_context(|| format!("cannot create {}", args.storage.display()))?;
    let mut builder = Phone::builder()
        .storage_dir(&args.storage)
        .sector_size(args.sector_size)
        .mode(PhoneMode::Edl)
        .boots_to(if args.reset_to_fastboot {
            PhoneMode::Bootloader
        } else {
            PhoneMode::Edl
        });
    if let Some(serial) = &args.serial {
        builder = builder.serial(serial);
    }
    if let Some(size) = args.lun_size {
        builder = builder.lun_size(size);
    }
    if !args.partitions.is_empty() {
        builder = builder.slots(&[]);
    }
    for spec in &args.partitions {
        let (name, size) = spec
            .split_once('=')
            .with_context(|| format!("--partition {spec}: expected NAME=SIZE"))?;
        let size = parse_byte_size(size).map_err(anyhow::Error::msg)?;
        builder = builder.partition(name, size);
    }
    if let Some(path) = &args.demo_programmer {
        let elf = programmer_elf(
            format!("flashgate simulated programmer for {:?}", args.serial).as_bytes(),
        );
        std::fs::write(path, &elf).with_context(|| format!("cannot write {}", path.display()))?;
        builder = builder.accept_programmer(Sha256::digest(&elf).into());
    }
    for file in &args.programmers {
        let bytes = std::fs::read(file)
            .with_context(|| format!("cannot read programmer {}", file.display()))?;
        builder = builder.accept_programmer(Sha256::digest(&bytes).into());
    }
    args.script
        .build(builder, station::mode::Mode::Edl)
        .with_context(|| {
            format!(
                "cannot create the phone storage in {}",
                args.storage.display()
            )
        })
}

pub fn run(args: EdlArgs) -> anyhow::Result<ExitCode> {
    let phone = build_phone(&args)?;
    let mut config = EdlSimConfig::new(args.sahara_version);
    // The ROM waits for a host as long as the pty is served: nobody may open the port for a
    // while, and a second HELLO would sit stale in the tty buffer.
    if args.crashed {
        let dump = SimMemoryDump::small(TableFormat::Bits64);
        for region in &dump.table {
            let bytes = dump.region_bytes(&region.filename).unwrap_or_default();
            eprintln!(
                "crash dump region {} ({}): {} bytes at {:#x}, sha256 {}",
                region.filename,
                region.description,
                region.length,
                region.address,
                hex::encode(Sha256::digest(bytes))
            );
        }
        config.rom = SaharaDevice::crashed(args.sahara_version, SaharaIdentity::default(), dump);
    }
    config.rom.host_timeout = Duration::from_secs(24 * 3600);
    config.programmer = FirehoseSimConfig {
        max_payload_to_target: usize::try_from(args.max_payload)
            .context("--max-payload is too large")?,
        boot_time: Duration::from_millis(args.programmer_boot_ms),
        ..Default::default()
    };
    let (settings, faults) = args.script.bootloader_and_faults()?;
    station::sim_fleet::scripted::script_edl(&faults, &mut config);
    if args.usb.functionfs.is_some() {
        let mut fastboot = protocols::sim::FastbootConfig::default();
        if let Some(allow) = super::fetch_allow(&args.fetch_allow) {
            fastboot.fetch_allow = allow;
        }
        station::sim_fleet::scripted::script_bootloader(&settings, &faults, &mut fastboot);
        return super::usb::serve(&args.usb, phone, config, fastboot);
    }
    let Some(pty_path) = &args.pty else {
        anyhow::bail!("--pty PATH or --functionfs DIR is required");
    };
    let mut pty = PtyDevice::create(Some(pty_path))?;
    println!(
        "EDL phone {} (Sahara v{}) on {}; storage in {}",
        phone.identity().serial,
        args.sahara_version,
        pty.path().display(),
        args.storage.display()
    );
    std::io::stdout().flush().ok();
    let left = serve_edl(&mut pty, &phone, &config, |outcome| {
        let note = match outcome {
            EdlOutcome::Programmer(o) => format!("programmer session ended: {o:?}"),
            EdlOutcome::ProgrammerRejected { status } => {
                format!("programmer refused by secure boot ({status}); the ROM waits")
            }
            EdlOutcome::RomReset => "boot ROM reset by the host".to_owned(),
            EdlOutcome::HostGone | EdlOutcome::HostSilent => "host went away".to_owned(),
        };
        eprintln!("{note}");
    })?;
    eprintln!("the phone left EDL (it is now in {:?})", left.mode);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct SimCli {
        #[command(flatten)]
        args: EdlArgs,
    }

    #[derive(Parser)]
    struct EdlCli {
        #[command(flatten)]
        args: crate::edl::Args,
    }

    /// Serve `sim edl --pty DIR/ttyEDL --storage DIR/phone --demo-programmer DIR/prog.elf
    /// EXTRA…` in the background (until the test process ends); returns the host's target.
    fn serve_in_background(dir: &std::path::Path, extra: &[&str]) -> String {
        let tty = dir.join("ttyEDL");
        let storage = dir.join("phone");
        let programmer = dir.join("prog.elf");
        let argv = [
            "sim-edl",
            "--pty",
            tty.to_str().unwrap(),
            "--storage",
            storage.to_str().unwrap(),
            "--demo-programmer",
            programmer.to_str().unwrap(),
        ];
        let sim = SimCli::try_parse_from(argv.iter().chain(extra))
            .unwrap()
            .args;
        std::thread::spawn(move || run(sim));
        for _ in 0..100 {
            if tty.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        format!("serial:{}", tty.display())
    }

    #[test]
    fn a_crashed_phone_offers_its_memory_to_ramdump_again_after_each_reset() {
        let dir = tempfile::tempdir().unwrap();
        let target = serve_in_background(dir.path(), &["--crashed"]);
        let expected = SimMemoryDump::small(TableFormat::Bits64);
        for round in ["first", "second"] {
            let out = dir.path().join(round);
            let argv = [
                "edl",
                "-t",
                &target,
                "ramdump",
                "--out",
                out.to_str().unwrap(),
            ];
            let args = EdlCli::try_parse_from(argv).unwrap().args;
            crate::edl::run(args).unwrap();
            for region in &expected.table {
                let written = std::fs::read(out.join(&region.filename)).unwrap();
                assert!(
                    written == expected.region_bytes(&region.filename).unwrap(),
                    "{round} dump of {}",
                    region.filename
                );
            }
        }
    }

    #[test]
    fn served_phone_keeps_what_edl_flashed_in_partition_files() {
        let dir = tempfile::tempdir().unwrap();
        let programmer = dir.path().join("prog.elf");
        let storage = dir.path().join("phone");
        let target = serve_in_background(
            dir.path(),
            &[
                "--partition",
                "boot=1M",
                "--partition",
                "system=2M",
                "--lun-size",
                "8M",
                "--sahara-version",
                "3",
                "--max-payload",
                "64K",
            ],
        );
        let image: Vec<u8> = (0..5000u32).map(|i| (i % 199) as u8 + 1).collect();
        std::fs::write(dir.path().join("boot.img"), &image).unwrap();
        let rawprogram = dir.path().join("rawprogram0.xml");
        std::fs::write(
            &rawprogram,
            "<data>\n<program SECTOR_SIZE_IN_BYTES=\"4096\" filename=\"boot.img\" label=\"boot\" num_partition_sectors=\"256\" physical_partition_number=\"0\" start_sector=\"256\"/>\n</data>\n",
        )
        .unwrap();
        let edl = |action: &[&str]| {
            let argv = ["edl", "-t", &target, "-p", programmer.to_str().unwrap()];
            let args = EdlCli::try_parse_from(argv.iter().copied().chain(action.iter().copied()))
                .unwrap()
                .args;
            crate::edl::run(args)
        };
        edl(&["printgpt"]).unwrap();
        edl(&["flash", rawprogram.to_str().unwrap()]).unwrap();
        let file = std::fs::read(storage.join("boot.img")).unwrap();
        assert_eq!(&file[..image.len()], &image[..]);
        assert!(file[image.len()..8192].iter().all(|&b| b == 0));
        // Reset: the served phone comes back in EDL and takes a new programmer session.
        edl(&["reset"]).unwrap();
        edl(&["digest", "boot"]).unwrap();
    }
}

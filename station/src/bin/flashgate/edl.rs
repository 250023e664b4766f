//! `flashgate edl`: one phone in Qualcomm Emergency Download mode (Sahara, then Firehose).
//!
//! `info` reads the boot ROM's identity in Sahara command mode and leaves the phone waiting for
//! a programmer; `ramdump` collects a crashed phone's RAM in memory-debug mode. Firehose actions (flash, read, digest, printgpt, reset) are added as further
//! [`Action`] variants: open the link with [`open_target`], upload with [`upload_programmer`],
//! then hand the link (and any bytes already read) to the Firehose client.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use protocols::progress::{NoProgress, ProgressSink};
use protocols::sahara::{
    DeviceInfo, InfoOutcome, SaharaHost, SaharaImages, SaharaOutcome, SaharaTimeouts,
};
use protocols::transport::serial::SerialLink;
use protocols::transport::usb::{DeviceSelector, UsbLink, EDL_INTERFACE};
use protocols::transport::Transport;

mod firehose;
mod ramdump;

#[derive(clap::Args)]
pub struct Args {
    /// The phone: usb:PORT_PATH (e.g. usb:1-4.2) or serial:DEV (the QDLoader tty, a COM
    /// port, or the pty of `flashgate sim edl`).
    #[arg(long, short = 't')]
    pub target: Target,
    /// Firehose programmer to upload over Sahara (image 13). `ID:FILE` serves another Sahara
    /// image id; repeat for ROMs that load several images.
    #[arg(long = "programmer", short = 'p')]
    pub programmers: Vec<String>,
    /// Seconds to wait for each Sahara packet (the HELLO wait is 1 s, then the phone is
    /// prodded with an unsolicited HELLO_RESP).
    #[arg(long, default_value_t = 5)]
    pub sahara_timeout: u64,
    /// Storage the programmer drives: ufs (4096-byte sectors) or emmc (512).
    #[arg(long, default_value = "ufs", value_parser = firehose::parse_storage)]
    pub storage: protocols::firehose::StorageKind,
    /// MaxPayloadSizeToTargetInBytes to ask for in `configure` (the programmer may offer less).
    #[arg(long, default_value_t = protocols::firehose::DEFAULT_MAX_PAYLOAD)]
    pub max_payload: usize,
    /// The most to configure again up to when the programmer says it supports a larger
    /// payload than was asked for (at most 16 MiB).
    #[arg(long, default_value_t = protocols::firehose::MAX_PAYLOAD_CAP)]
    pub max_payload_cap: usize,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand)]
pub enum Action {
    /// Print the Sahara identity: serial, MSM HW ID or v3 chip id, OEM PK hash, SBL version.
    Info,
    /// Upload the programmer over Sahara and leave it running (a later Firehose session finds
    /// it and skips Sahara).
    Upload,
    /// Flash a flat build: rawprogram*.xml and patch*.xml files (programs of every file run
    /// before the patches), then mark the boot LUN bootable.
    Flash {
        #[arg(required = true, value_name = "XML")]
        files: Vec<std::path::PathBuf>,
    },
    /// Read a partition (found by GPT label on any LUN) into a file; prints its SHA-256.
    Read {
        label: String,
        out: std::path::PathBuf,
    },
    /// Ask the programmer for the SHA-256 of a partition (getsha256digest).
    Digest { label: String },
    /// Print the GPT of every LUN (its backup copy, with a warning, where the primary is
    /// damaged).
    Printgpt,
    /// Reset the phone (power reset); it leaves EDL.
    Reset,
    /// Collect a crashed phone's RAM (Sahara memory-debug mode) into DIR, one file per region
    /// as the phone names them, then reset it.
    Ramdump {
        /// Output directory (created if missing).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Collect only this region (filename with or without extension); repeatable.
        #[arg(long = "region")]
        regions: Vec<String>,
        /// Collect only the regions the phone marks as worth saving.
        #[arg(long)]
        preferred_only: bool,
        /// Skip any region larger than this many bytes.
        #[arg(long, default_value_t = protocols::sahara::ramdump::RamdumpLimits::default().max_region_bytes)]
        max_region_bytes: u64,
        /// Stop collecting once this many bytes are written.
        #[arg(long, default_value_t = protocols::sahara::ramdump::RamdumpLimits::default().max_total_bytes)]
        max_total_bytes: u64,
    },
}

/// Where the phone is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Usb(String),
    Serial(String),
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("usb", port)) if !port.is_empty() => Ok(Target::Usb(port.to_string())),
            Some(("serial", dev)) if !dev.is_empty() => Ok(Target::Serial(dev.to_string())),
            _ => Err(format!(
                "`{s}` is not a target: use usb:PORT_PATH (e.g. usb:1-4.2) or serial:DEV (e.g. serial:/dev/ttyUSB0)"
            )),
        }
    }
}

/// Open the link to the phone.
pub fn open_target(target: &Target) -> anyhow::Result<Box<dyn Transport>> {
    Ok(match target {
        Target::Usb(port) => Box::new(
            UsbLink::open(&DeviceSelector::PortPath(port.clone()), &EDL_INTERFACE)
                .with_context(|| format!("cannot open the EDL device at usb:{port}"))?,
        ),
        Target::Serial(dev) => Box::new(
            SerialLink::open(dev).with_context(|| format!("cannot open serial port {dev}"))?,
        ),
    })
}

pub fn sahara_timeouts(args: &Args) -> SaharaTimeouts {
    SaharaTimeouts {
        packet: Duration::from_secs(args.sahara_timeout),
        ..SaharaTimeouts::default()
    }
}

/// The images named by `--programmer`.
pub fn programmer_images(args: &Args) -> anyhow::Result<SaharaImages> {
    if args.programmers.is_empty() {
        bail!("this action needs the Firehose programmer: pass --programmer FILE");
    }
    Ok(SaharaImages::from_list(
        args.programmers
            .iter()
            .map(|p| SaharaImages::parse_entry(p)),
    ))
}

/// Upload the programmer. `FirehoseAlreadyRunning` carries the bytes the running programmer
/// already sent: the Firehose client must start with them.
pub fn upload_programmer(
    link: &mut dyn Transport,
    args: &Args,
    progress: &dyn ProgressSink,
) -> anyhow::Result<SaharaOutcome> {
    let images = programmer_images(args)?;
    let outcome =
        SaharaHost::with_timeouts(link, sahara_timeouts(args)).upload(&images, progress)?;
    if let SaharaOutcome::FirehoseAlreadyRunning { .. } = outcome {
        tracing::info!("a Firehose programmer is already running; Sahara skipped");
    }
    Ok(outcome)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut link = open_target(&args.target)?;
    match args.action {
        Action::Info => {
            print!("{}", info(&mut *link, &args)?);
            Ok(ExitCode::SUCCESS)
        }
        Action::Upload => {
            println!("{}", upload(&mut *link, &args)?);
            Ok(ExitCode::SUCCESS)
        }
        Action::Ramdump { .. } => ramdump::run(&mut *link, &args),
        _ => firehose::run(link, &args),
    }
}

fn upload(link: &mut dyn Transport, args: &Args) -> anyhow::Result<String> {
    Ok(match upload_programmer(link, args, &NoProgress)? {
        SaharaOutcome::ProgrammerLoaded(report) => {
            let images: Vec<String> = report
                .images
                .iter()
                .filter(|i| i.requests > 0)
                .map(|i| {
                    format!(
                        "{} (image {}, {} bytes sent in {} requests)",
                        i.file.display(),
                        i.image_id,
                        i.bytes_sent,
                        i.requests
                    )
                })
                .collect();
            format!("programmer accepted: {}", images.join(", "))
        }
        SaharaOutcome::FirehoseAlreadyRunning { .. } => {
            "a Firehose programmer is already running; nothing uploaded".to_string()
        }
    })
}

fn info(link: &mut dyn Transport, args: &Args) -> anyhow::Result<String> {
    let described = link.describe();
    match SaharaHost::with_timeouts(link, sahara_timeouts(args)).read_info()? {
        InfoOutcome::Info(info) => Ok(format_info(&info)),
        InfoOutcome::FirehoseAlreadyRunning { .. } => bail!(
            "{described}: a Firehose programmer is already running, so the boot ROM's identity \
             cannot be read; power-cycle the phone into EDL and retry"
        ),
    }
}

/// The identity, one `name: value` line per field the phone gave.
fn format_info(info: &DeviceInfo) -> String {
    let mut lines = Vec::new();
    let mut line = |name: &str, value: String| lines.push(format!("{name:<16} {value}"));
    line(
        "sahara version",
        info.version
            .map_or("unknown (no HELLO seen)".into(), |v| v.to_string()),
    );
    if let Some(serial) = info.serial {
        line("serial", format!("0x{serial:08x}"));
    }
    if let Some(hw_id) = info.hw_id {
        line("hw id", hw_id.to_string());
    }
    if let Some(chip) = info.chip_id_v3 {
        line("chip id (v3)", format!("0x{:08x}", chip.chip_identifier));
    }
    if let Some(hash) = &info.oem_pk_hash {
        line("oem pk hash", hex::encode(hash));
    }
    if let Some(v) = info.sbl_version {
        line("sbl version", format!("0x{v:08x}"));
    }
    for (command, status) in &info.refused {
        line("refused", format!("{command:?}: {status}"));
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use protocols::sahara::identity::HwId;
    use protocols::sim::sahara::{SaharaDevice, SaharaIdentity};
    use protocols::transport::pty::PtyDevice;
    use sha2::Digest;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("edl").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn targets_parse() {
        assert_eq!("usb:1-4.2".parse(), Ok(Target::Usb("1-4.2".into())));
        assert_eq!(
            "serial:/dev/ttyUSB0".parse(),
            Ok(Target::Serial("/dev/ttyUSB0".into()))
        );
        assert!("tcp:1.2.3.4".parse::<Target>().is_err());
        assert!("usb:".parse::<Target>().is_err());
        let args = parse(&[
            "--target", "usb:1-1", "-p", "prog.elf", "-p", "21:x.mbn", "info",
        ]);
        let args = args.unwrap();
        assert_eq!(
            programmer_images(&args).unwrap().entries(),
            &[(13, "prog.elf".into()), (21, "x.mbn".into())]
        );
        assert!(programmer_images(&parse(&["-t", "usb:1-1", "info"]).unwrap()).is_err());
    }

    #[test]
    fn info_over_a_pty_prints_the_identity() {
        let dir = tempfile::tempdir().unwrap();
        let tty = dir.path().join("ttyEDL");
        let mut pty = PtyDevice::create(Some(&tty)).unwrap();
        let identity = SaharaIdentity {
            serial: 0xcafe_f00d,
            hw_id: HwId {
                msm_id: 0x0009_50e1,
                oem_id: 0x0072,
                model_id: 0x0001,
            },
            chip_identifier: 0x950,
            oem_pk_hash: vec![0xab; 32],
            sbl_version: 5,
            signed_programmers: Vec::new(),
        };
        let mut device = SaharaDevice::new(2, identity);
        device.host_timeout = Duration::from_secs(1);
        let rom = std::thread::spawn(move || {
            let outcome = device.serve(&mut pty);
            (outcome, pty)
        });
        let args = parse(&["--target", &format!("serial:{}", tty.display()), "info"]).unwrap();
        let mut link = open_target(&args.target).unwrap();
        let text = info(&mut *link, &args).unwrap();
        assert_eq!(
            text,
            format!(
                "sahara version   2\n\
                 serial           0xcafef00d\n\
                 hw id            0x000950e100720001 (MSM_ID 0x000950e1, OEM_ID 0x0072, MODEL_ID 0x0001)\n\
                 oem pk hash      {}\n\
                 sbl version      0x00000005\n",
                "ab".repeat(32)
            )
        );
        drop(link);
        // The ROM went back to image transfer and said HELLO again; nobody answers it now.
        let (outcome, _pty) = rom.join().unwrap();
        assert!(outcome.is_ok());
    }

    #[test]
    fn upload_then_upload_again_finds_the_programmer_running() {
        let dir = tempfile::tempdir().unwrap();
        let tty = dir.path().join("ttyEDL");
        let prog = dir.path().join("prog.elf");
        let elf = protocols::sim::sahara_elf::programmer_elf(b"cli programmer");
        std::fs::write(&prog, &elf).unwrap();
        let mut pty = PtyDevice::create(Some(&tty)).unwrap();
        let mut identity = SaharaIdentity::default();
        identity
            .signed_programmers
            .push(sha2::Sha256::digest(&elf).into());
        let rom = std::thread::spawn(move || {
            let outcome = SaharaDevice::new(3, identity).serve(&mut pty).unwrap();
            // The programmer runs: it answers the next host's bytes (the prod) with XML.
            let mut buf = [0u8; 64];
            let n = pty.read_packet(&mut buf, Duration::from_secs(5)).unwrap();
            assert!(n > 0);
            pty.write(
                b"<?xml version=\"1.0\" ?><data><response value=\"NAK\" /></data>",
                Duration::from_secs(1),
            )
            .unwrap();
            (outcome, pty)
        });
        let target = format!("serial:{}", tty.display());
        let args = parse(&["-t", &target, "-p", prog.to_str().unwrap(), "upload"]).unwrap();
        let mut link = open_target(&args.target).unwrap();
        let text = upload(&mut *link, &args).unwrap();
        assert_eq!(
            text,
            format!(
                "programmer accepted: {} (image 13, {} bytes sent in 6 requests)",
                prog.display(),
                elf.len()
            )
        );
        drop(link);
        let mut link = open_target(&args.target).unwrap();
        let text = upload(&mut *link, &args).unwrap();
        assert_eq!(
            text,
            "a Firehose programmer is already running; nothing uploaded"
        );
        let (outcome, _pty) = rom.join().unwrap();
        assert!(matches!(
            outcome,
            protocols::sim::sahara::SaharaServeOutcome::ProgrammerAccepted { .. }
        ));
    }

    #[test]
    fn refused_commands_and_unknown_version_are_printed() {
        let info = DeviceInfo {
            version: None,
            serial: Some(1),
            hw_id: None,
            chip_id_v3: None,
            oem_pk_hash: None,
            sbl_version: None,
            refused: vec![(
                protocols::sahara::packet::ExecCommand::MsmHwIdRead,
                protocols::sahara::Status::EXEC_CMD_UNSUPPORTED,
            )],
        };
        assert_eq!(
            format_info(&info),
            "sahara version   unknown (no HELLO seen)\n\
             serial           0x00000001\n\
             refused          MsmHwIdRead: 0x1f EXEC_CMD_UNSUPPORTED (unsupported client command received)\n"
        );
    }
}

//! `flashgate fastboot`: the engineering fastboot client (one device, one command).
//!
//! Unlike AOSP's `fastboot`, every device FAIL (getvar included) ends with a non-zero exit code,
//! and a silent device times out instead of hanging. On a dynamic-partition phone it speaks
//! fastbootd (`reboot fastboot`, `update-super`, the logical-partition commands, `flash` of a
//! logical partition resized first) and refuses, before sending, what needs the other mode.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use protocols::fastboot::{
    ClientOptions, Fastboot, FlashOptions, FlashingAction, RebootTarget, SlotChoice,
    DEFAULT_MAX_COMMAND_LEN,
};
use protocols::progress::{ProgressEvent, ProgressSink};
use protocols::transport::tcp::TcpLink;
use protocols::transport::usb::{DeviceSelector, UsbLink, FASTBOOT_INTERFACE};
use protocols::transport::Transport;

use crate::byte_size::parse_byte_size;
use crate::output_file::OutputFile;

#[derive(clap::Args)]
pub struct Args {
    /// The device: tcp:HOST[:PORT] (port 5554 by default), usb:PORT_PATH or usb-serial:SERIAL.
    #[arg(long, short = 't')]
    target: String,
    /// Download limit in bytes (K/M/G suffixes allowed), used instead of the device's
    /// max-download-size (like `fastboot -S`).
    #[arg(short = 'S', long, value_parser = parse_byte_size)]
    max_download_size: Option<u64>,
    /// Seconds a command's answer may take, INFO lines included (they do not extend it).
    /// Commands that write storage (flash, erase, flashing lock/unlock) get at least
    /// 10 minutes: a device writing a large image can be silent that long.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Longest command to send; old bootloaders accept 64 bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_COMMAND_LEN)]
    max_command_len: usize,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Print a variable (`all` prints every variable).
    Getvar { var: String },
    /// Flash an image file (raw or sparse) to a partition. In fastbootd a logical partition
    /// is first resized to the image's (expanded) size, as AOSP's fastboot does.
    Flash {
        partition: String,
        file: PathBuf,
        /// a, b, all, other (default: the current slot for slotted partitions).
        #[arg(long)]
        slot: Option<SlotChoice>,
    },
    /// Erase a partition.
    Erase {
        partition: String,
        #[arg(long)]
        slot: Option<SlotChoice>,
    },
    /// Read a partition (or a byte range of it) into a file.
    Fetch {
        partition: String,
        out: PathBuf,
        #[arg(long)]
        slot: Option<SlotChoice>,
        /// First byte to read.
        #[arg(long, default_value = "0", value_parser = parse_byte_size)]
        offset: u64,
        /// Bytes to read (default: to the end of the partition).
        #[arg(long, value_parser = parse_byte_size)]
        size: Option<u64>,
    },
    /// Make SLOT (a, b) the one that boots.
    SetActive { slot: String },
    /// Reboot: to the system, or to bootloader, fastboot or recovery.
    Reboot { mode: Option<String> },
    /// Leave fastboot and continue booting.
    Continue,
    /// A vendor command; its INFO lines are printed.
    Oem {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Lock or unlock the bootloader: lock, unlock, lock_critical, unlock_critical,
    /// get_unlock_ability.
    Flashing { action: String },
    /// fastbootd: replace the partition table of `super` with a super_empty.img (the other
    /// slot's partitions are kept unless --wipe).
    UpdateSuper {
        super_empty: PathBuf,
        /// Replace everything, the other slot's partitions included.
        #[arg(long)]
        wipe: bool,
    },
    /// fastbootd: create a logical partition of SIZE bytes (K/M/G suffixes allowed). NAME is
    /// used as given: add the slot suffix yourself (`extra_a`).
    CreateLogicalPartition {
        name: String,
        #[arg(value_parser = parse_byte_size)]
        size: u64,
    },
    /// fastbootd: delete a logical partition (NAME as given, e.g. `extra_a`).
    DeleteLogicalPartition { name: String },
    /// fastbootd: grow or shrink a logical partition to SIZE bytes; NAME gets the slot suffix
    /// the device's slots say (`system` → `system_a`), as AOSP's fastboot does.
    ResizeLogicalPartition {
        name: String,
        #[arg(value_parser = parse_byte_size)]
        size: u64,
        /// a, b, all, other (default: the current slot for slotted partitions).
        #[arg(long)]
        slot: Option<SlotChoice>,
    },
}

fn open_target(target: &str, timeout: Duration) -> anyhow::Result<Box<dyn Transport>> {
    if let Some(addr) = target.strip_prefix("tcp:") {
        let addr = if addr.contains(':') {
            addr.to_string()
        } else {
            format!("{addr}:5554")
        };
        let link = TcpLink::connect(&addr, timeout)
            .with_context(|| format!("connecting to fastboot TCP device at {addr}"))?;
        return Ok(Box::new(link));
    }
    let selector = if let Some(path) = target.strip_prefix("usb:") {
        DeviceSelector::PortPath(path.to_string())
    } else if let Some(serial) = target.strip_prefix("usb-serial:") {
        DeviceSelector::Serial(serial.to_string())
    } else {
        bail!("unknown target `{target}`: use tcp:HOST:PORT, usb:PORT_PATH or usb-serial:SERIAL");
    };
    let link = UsbLink::open(&selector, &FASTBOOT_INTERFACE)
        .with_context(|| format!("opening fastboot USB device {target}"))?;
    Ok(Box::new(link))
}

/// Progress bar and device messages on stderr.
struct StderrProgress {
    bar: ProgressBar,
}

impl StderrProgress {
    fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:20} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        StderrProgress { bar }
    }

    fn say(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

impl ProgressSink for StderrProgress {
    fn event(&self, event: ProgressEvent<'_>) {
        match event {
            ProgressEvent::StepStarted { step, total_bytes } => {
                self.bar.reset();
                self.bar.set_length(total_bytes);
                self.bar.set_message(step.to_string());
                self.say(&format!("{step} ({total_bytes} bytes)"));
            }
            ProgressEvent::Bytes { bytes } => self.bar.inc(bytes),
            ProgressEvent::StepFinished { step } => {
                self.bar.finish_and_clear();
                self.say(&format!("{step}: done"));
            }
            ProgressEvent::DeviceMessage { text } => {
                self.say(&format!("(bootloader) {}", text.escape_debug()))
            }
        }
    }
}

fn single_partition(
    fb: &mut Fastboot<Box<dyn Transport>>,
    partition: &str,
    slot: Option<SlotChoice>,
) -> anyhow::Result<String> {
    let mut names = fb.resolve_partitions(partition, &slot.unwrap_or_default())?;
    if names.len() != 1 {
        bail!("`{partition}` resolves to {names:?}; choose one slot");
    }
    Ok(names.remove(0))
}

/// The least time a storage-writing command's answer is given, whatever `--timeout` says.
const MIN_WRITE_DEADLINE: Duration = Duration::from_secs(600);

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let link = open_target(&args.target, timeout)?;
    let defaults = ClientOptions::default();
    let mut fb = Fastboot::with_options(
        link,
        ClientOptions {
            response_timeout: timeout,
            command_deadline: Some(timeout),
            write_deadline: Some(timeout.max(MIN_WRITE_DEADLINE)),
            max_command_len: args.max_command_len,
            chunk_size: defaults.chunk_size,
            ..defaults
        },
    );
    let progress = Arc::new(StderrProgress::new());
    fb.set_progress(progress.clone());
    let started = Instant::now();
    match args.action {
        Action::Getvar { var } if var == "all" => {
            for (name, value) in fb.getvar_all()? {
                println!("{name}: {value}");
            }
        }
        Action::Getvar { var } => {
            let value = fb.getvar(&var)?;
            println!("{var}: {value}");
        }
        Action::Flash {
            partition,
            file,
            slot,
        } => {
            let options = FlashOptions {
                slot: slot.unwrap_or_default(),
                max_download_size: args.max_download_size,
                ..FlashOptions::default()
            };
            let report = fb.flash_file(&partition, &file, &options)?;
            let secs = started.elapsed().as_secs_f64();
            if let Some(size) = report.resized_to {
                eprintln!(
                    "resized {} to {size} bytes before writing (logical partition)",
                    report.partitions.join(", ")
                );
            }
            eprintln!(
                "flashed {} ({:?} image, {} bytes) to {} in {} piece(s) of at most {} bytes \
                 (max-download-size {}): {} bytes sent in {secs:.2} s",
                file.display(),
                report.kind,
                report.image_len,
                report.partitions.join(", "),
                report.pieces,
                report.piece_limit,
                report.max_download_size,
                report.bytes_sent
            );
        }
        Action::Erase { partition, slot } => {
            for name in fb.resolve_partitions(&partition, &slot.unwrap_or_default())? {
                fb.erase(&name)?;
                eprintln!("erased {name}");
            }
        }
        Action::Fetch {
            partition,
            out,
            slot,
            offset,
            size,
        } => {
            let name = single_partition(&mut fb, &partition, slot)?;
            let file = OutputFile::create(&out)?;
            let mut writer = BufWriter::with_capacity(1 << 20, file.file());
            let bytes = fb.fetch_partition(&name, offset, size, &mut writer)?;
            writer
                .flush()
                .with_context(|| format!("writing {}", out.display()))?;
            drop(writer);
            file.commit()?;
            eprintln!("fetched {bytes} bytes of {name} into {}", out.display());
        }
        Action::SetActive { slot } => {
            let slot = slot.trim_start_matches('_');
            fb.set_active(slot)?;
            eprintln!("active slot: {slot}");
        }
        Action::Reboot { mode } => {
            let mode = mode.unwrap_or_default();
            let Some(target) = RebootTarget::parse(&mode) else {
                bail!("unknown reboot mode `{mode}`: use bootloader, fastboot or recovery");
            };
            fb.reboot(target)?;
            if target == RebootTarget::Fastboot {
                // The phone leaves (USB) or closes the connection (TCP) and comes back as
                // fastbootd; the next invocation finds it there.
                eprintln!(
                    "rebooting into fastbootd: the phone comes back in userspace fastboot                      (`getvar is-userspace` answers yes)"
                );
            }
        }
        Action::Continue => {
            fb.continue_boot()?;
        }
        Action::Oem { args: words } => {
            let reply = fb.oem(&words.join(" "))?;
            if !reply.value.is_empty() {
                println!("{}", reply.value);
            }
        }
        Action::Flashing { action } => {
            let action = match action.as_str() {
                "lock" => FlashingAction::Lock,
                "unlock" => FlashingAction::Unlock,
                "lock_critical" => FlashingAction::LockCritical,
                "unlock_critical" => FlashingAction::UnlockCritical,
                "get_unlock_ability" => FlashingAction::GetUnlockAbility,
                other => bail!("unknown flashing action `{other}`"),
            };
            fb.flashing(action)?;
        }
        Action::UpdateSuper { super_empty, wipe } => {
            let reply = fb.update_super_file(&super_empty, wipe)?;
            eprintln!(
                "updated the partition table of super from {}{}: {}",
                super_empty.display(),
                if wipe { " (wiped)" } else { "" },
                reply.value
            );
        }
        Action::CreateLogicalPartition { name, size } => {
            fb.create_logical_partition(&name, size)?;
            eprintln!("created logical partition {name} ({size} bytes)");
        }
        Action::DeleteLogicalPartition { name } => {
            fb.delete_logical_partition(&name)?;
            eprintln!("deleted logical partition {name}");
        }
        Action::ResizeLogicalPartition { name, size, slot } => {
            for name in fb.resolve_partitions(&name, &slot.unwrap_or_default())? {
                fb.resize_logical_partition(&name, size)?;
                eprintln!("resized logical partition {name} to {size} bytes");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

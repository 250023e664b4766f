//! `flashgate sim …`: serve simulated phones to outside peers (Debian's `fastboot`, our own
//! client, training set-ups).

use std::io::Write;
use std::net::TcpListener;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use protocols::sim::{FastbootConfig, FastbootDevice, FetchAllow, Phone, PhoneMode, SessionEnd};

use crate::byte_size::parse_byte_size;

mod edl;
mod usb;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(clap::Subcommand)]
enum SimCommand {
    /// Serve one simulated fastboot phone over fastboot TCP until killed (one connection after
    /// another, as the AOSP client connects once per command). Partitions are kept as sparse
    /// files DIR/<name>.img; a restart on the same DIR keeps their contents.
    Fastboot(FastbootArgs),
    /// Serve one simulated phone in Qualcomm EDL (Sahara boot ROM, then the Firehose
    /// programmer) on a pseudo-terminal until killed; LUN and partition files in DIR.
    Edl(edl::EdlArgs),
    /// Write a programmer ELF that simulated phones can be told to accept (demo EDL packages,
    /// training); its SHA-256 depends only on NAME.
    ProgrammerElf(ProgrammerElfArgs),
}

#[derive(clap::Args)]
struct ProgrammerElfArgs {
    /// Where to write the ELF.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Text embedded as the programmer's code segment.
    #[arg(long)]
    name: String,
}

#[derive(clap::Args)]
struct FastbootArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:5554")]
    listen: String,
    #[command(flatten)]
    usb: usb::UsbArgs,
    /// Directory for the partition files.
    #[arg(long, value_name = "DIR")]
    storage: PathBuf,
    /// `getvar product`.
    #[arg(long)]
    product: Option<String>,
    /// `getvar serialno` (also seeds the GPT GUIDs).
    #[arg(long)]
    serial: Option<String>,
    /// `getvar max-download-size` in bytes (suffixes K, M, G allowed).
    #[arg(long, value_name = "BYTES", value_parser = parse_byte_size)]
    max_download_size: Option<u64>,
    /// `getvar max-fetch-size` in bytes.
    #[arg(long, value_name = "BYTES", value_parser = parse_byte_size)]
    max_fetch_size: Option<u64>,
    /// A partition (repeatable), e.g. `boot=64M`. With --slots, names get one copy per slot
    /// (`boot_a`, `boot_b`) except shared ones (userdata, metadata, misc, persist, frp, super,
    /// cache) and names that already end in a slot suffix. Without any, a typical A/B layout.
    #[arg(long = "partition", value_name = "NAME=SIZE")]
    partitions: Vec<String>,
    /// Slot suffixes, e.g. `a,b` (default: a,b for the built-in layout, none with --partition).
    #[arg(long, value_delimiter = ',')]
    slots: Option<Vec<String>>,
    /// Sector size of the storage LUN (4096 UFS, 512 eMMC).
    #[arg(long, default_value_t = 4096)]
    sector_size: u32,
    #[command(flatten)]
    script: PhoneFileArgs,
    /// A dynamic-partition phone (Android 10+): a physical `super` of SIZE whose LP metadata
    /// holds system, system_ext, product, vendor and odm per slot (slot a sized, slot b
    /// empty). `reboot fastboot` reaches fastbootd, which flashes, creates, resizes and
    /// deletes them and takes `update-super`; the bootloader refuses them and flashes `super`
    /// whole. Without --partition, the physical layout is boot, init_boot, vendor_boot, dtbo,
    /// vbmeta(_system) per slot, misc, metadata, persist, super, userdata.
    #[arg(long = "super", value_name = "SIZE", value_parser = parse_byte_size)]
    super_size: Option<u64>,
    /// Partitions `fetch:` may read (repeatable; `all` for any, `none` for a bootloader without
    /// the command). Default: fastbootd's list (vendor_boot, vendor_boot_a, vendor_boot_b).
    #[arg(long = "fetch-allow", value_name = "NAME")]
    fetch_allow: Vec<String>,
    /// Start with the bootloader locked (flash/erase refused until `flashing unlock`).
    #[arg(long)]
    locked: bool,
    /// Where the phone's boot chain ends after `reboot`, `continue` or a power reset: the
    /// bootloader (a factory build, so a client keeps finding the phone), or Android (the
    /// phone leaves fastboot, and the simulator ends).
    #[arg(long, value_enum, default_value_t = BootsTo::Bootloader)]
    boots_to: BootsTo,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BootsTo {
    Bootloader,
    Android,
}

impl From<BootsTo> for PhoneMode {
    fn from(b: BootsTo) -> Self {
        match b {
            BootsTo::Bootloader => PhoneMode::Bootloader,
            BootsTo::Android => PhoneMode::Android,
        }
    }
}

/// Names that stay single on an A/B phone.
const SHARED_PARTITIONS: &[&str] = &[
    "userdata", "metadata", "misc", "persist", "frp", "super", "cache", "devinfo",
];

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        SimCommand::Fastboot(a) => fastboot(a),
        SimCommand::Edl(a) => edl::run(a),
        SimCommand::ProgrammerElf(a) => {
            let elf = protocols::sim::sahara_elf::programmer_elf(
                format!("flashgate simulated programmer: {}", a.name).as_bytes(),
            );
            std::fs::write(&a.out, &elf)
                .with_context(|| format!("cannot write {}", a.out.display()))?;
            println!("{} ({} bytes)", a.out.display(), elf.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--phone FILE [--slot N]`: the phone a phones file describes (configs/demo/phones.yaml),
/// over what the other options build.
#[derive(clap::Args)]
pub(crate) struct PhoneFileArgs {
    /// A phones file; the phone it describes (identity, slots, partition contents, bootloader
    /// settings, device faults) is served, over the other options. Link faults (`rate`,
    /// `disconnect_after`) need `flashgate run --phones`.
    #[arg(long, value_name = "FILE")]
    phone: Option<PathBuf>,
    /// With --phone: the file's phone on this slot (needed when it describes several).
    #[arg(long, value_name = "N", requires = "phone")]
    slot: Option<u16>,
}

impl PhoneFileArgs {
    /// Build the phone: from the script when one is given, else as `builder` says.
    pub(crate) fn build(
        &self,
        builder: protocols::sim::PhoneBuilder,
        mode: station::mode::Mode,
    ) -> anyhow::Result<Phone> {
        let Some(path) = &self.phone else {
            return Ok(builder.build()?);
        };
        let file = station::config::PhonesFile::load(path)?;
        let script = match self.slot {
            Some(slot) => file
                .phone_on(slot)
                .with_context(|| format!("{} describes no phone on slot {slot}", path.display()))?,
            None if file.phones.len() == 1 => &file.phones[0],
            None => bail!(
                "{} describes {} phones: choose one with --slot N",
                path.display(),
                file.phones.len()
            ),
        };
        if script.mode != mode {
            bail!(
                "{}: the phone is described in {} mode; serve it with `flashgate sim {}`",
                path.display(),
                script.mode,
                script.mode.as_str()
            );
        }
        if script.faults.rate.is_some() || script.faults.disconnect_after.is_some() {
            bail!(
                "{}: `rate` and `disconnect_after` are link faults of the simulated bus; use                  `flashgate run --phones` for them (a TCP, pty or FunctionFS peer has its own link)",
                path.display()
            );
        }
        Ok(station::sim_fleet::scripted::scripted_from(
            builder, &file, script,
        )?)
    }

    /// The bootloader settings and faults of the phone the script describes (defaults without
    /// one): the bootloader's (`bootloader:`, `set_active`) and those the boot ROM and
    /// programmer carry out (`sahara`, `programmer_boot`, `firehose_packets`) are settings of
    /// the device being served, not of the phone.
    pub(crate) fn bootloader_and_faults(
        &self,
    ) -> anyhow::Result<(
        station::config::BootloaderScript,
        station::config::FaultScript,
    )> {
        let Some(path) = &self.phone else {
            return Ok(Default::default());
        };
        let file = station::config::PhonesFile::load(path)?;
        let script = match self.slot {
            Some(slot) => file.phone_on(slot),
            None => file.phones.first(),
        };
        Ok(script
            .map(|s| (s.bootloader.clone(), s.faults.clone()))
            .unwrap_or_default())
    }
}

/// `--fetch-allow` values: `all`, `none` (no `fetch` command at all), or the partitions
/// `fetch:` may read; no value keeps the default.
fn fetch_allow(names: &[String]) -> Option<FetchAllow> {
    if names.iter().any(|n| n == "all") {
        Some(FetchAllow::All)
    } else if names.iter().any(|n| n == "none") {
        Some(FetchAllow::None)
    } else if names.is_empty() {
        None
    } else {
        Some(FetchAllow::Only(names.to_vec()))
    }
}

fn build_phone(a: &FastbootArgs) -> anyhow::Result<Phone> {
    let mut builder = Phone::builder()
        .storage_dir(&a.storage)
        .sector_size(a.sector_size)
        .unlocked(!a.locked)
        .boots_to(a.boots_to.into());
    if let Some(serial) = &a.serial {
        builder = builder.serial(serial);
    }
    if let Some(product) = &a.product {
        builder = builder.product(product);
    }
    if let Some(size) = a.super_size {
        builder = builder.dynamic_partitions(size);
    }
    let slots: Vec<String> = match &a.slots {
        Some(s) => s.iter().filter(|s| !s.is_empty()).cloned().collect(),
        None if a.partitions.is_empty() => vec!["a".into(), "b".into()],
        None => Vec::new(),
    };
    for s in &slots {
        if s.len() != 1 || !s.chars().all(|c| c.is_ascii_lowercase()) {
            bail!("--slots: {s:?} is not a slot suffix (one lowercase letter, e.g. a,b)");
        }
    }
    let slot_refs: Vec<&str> = slots.iter().map(String::as_str).collect();
    builder = builder.slots(&slot_refs);
    for spec in &a.partitions {
        let (name, size) = spec
            .split_once('=')
            .with_context(|| format!("--partition {spec:?}: expected NAME=SIZE, e.g. boot=64M"))?;
        let size =
            parse_byte_size(size).map_err(|e| anyhow::anyhow!("--partition {spec:?}: {e}"))?;
        let literal = SHARED_PARTITIONS.contains(&name)
            || slots.iter().any(|s| name.ends_with(&format!("_{s}")));
        builder = if literal || slots.is_empty() {
            builder.partition(name, size)
        } else {
            builder.slotted_partition(name, size)
        };
    }
    a.script
        .build(builder, station::mode::Mode::Fastboot)
        .with_context(|| format!("creating the simulated phone in {}", a.storage.display()))
}

fn fastboot(a: FastbootArgs) -> anyhow::Result<ExitCode> {
    let phone = build_phone(&a)?;
    let mut config = FastbootConfig::default();
    if let Some(n) = a.max_download_size {
        config.max_download_size = u32::try_from(n)
            .context("--max-download-size: at most 4 GiB - 1 (a DATA response has 8 hex digits)")?;
    }
    if let Some(n) = a.max_fetch_size {
        config.max_fetch_size = u32::try_from(n)
            .context("--max-fetch-size: at most 4 GiB - 1 (a DATA response has 8 hex digits)")?;
    }
    if let Some(allow) = fetch_allow(&a.fetch_allow) {
        config.fetch_allow = allow;
    }
    let (settings, faults) = a.script.bootloader_and_faults()?;
    station::sim_fleet::scripted::script_bootloader(&settings, &faults, &mut config);
    if a.usb.functionfs.is_some() {
        let mut edl = protocols::sim::edl::EdlSimConfig::default();
        station::sim_fleet::scripted::script_edl(&faults, &mut edl);
        return usb::serve(&a.usb, phone, edl, config);
    }
    let listener =
        TcpListener::bind(&a.listen).with_context(|| format!("listening on {}", a.listen))?;
    let local = listener.local_addr()?;
    let identity = phone.identity();
    let partitions = phone.lock().storage.partitions();
    // Stdout carries one machine-readable line (tests that pass port 0 read the address from
    // it and may close the pipe afterwards); everything else goes to stderr.
    println!("listening on {local}");
    std::io::stdout().flush()?;
    eprintln!(
        "simulated fastboot phone {} ({}), {} partitions in {}, max-download-size {:#x}",
        identity.serial,
        identity.product,
        partitions.len(),
        a.storage.display(),
        config.max_download_size
    );
    if let Some(size) = a.super_size {
        eprintln!(
            "dynamic partitions in a {size}-byte super: `fastboot reboot fastboot` to edit them"
        );
    }
    let mut device = FastbootDevice::new(phone.clone(), config);
    device.serve_tcp(&listener, |end| {
        match end {
            SessionEnd::Disconnected => {}
            SessionEnd::LinkError(e) => eprintln!("session ended: link error: {e}"),
            other => eprintln!(
                "session ended: {other:?}; the phone is now in {:?}",
                phone.mode()
            ),
        }
        ControlFlow::Continue(())
    });
    if phone.mode().personality().is_some() {
        // Still in a fastboot mode yet gone: its scripted cable was pulled.
        eprintln!(
            "the phone's cable was pulled (it is still in {:?}); nothing serves it any more",
            phone.mode()
        );
    } else {
        eprintln!(
            "the phone left fastboot (it is now in {:?}), where fastboot TCP cannot reach it",
            phone.mode()
        );
    }
    Ok(ExitCode::SUCCESS)
}

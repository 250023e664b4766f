//! Simulated phones built from a phones file ([`PhonesFile`]): each starts as the batch
//! product's rig phone and takes what the file says — mode, identity, A/B state, partition
//! contents, bootloader settings — and its faults, armed through the simulator's own fault
//! hooks (device fault rules, dropped writes, link faults, the programmer's boot time).
//! Problems found here (a partition the phone lacks, an image that does not fit) name the
//! file, line and key.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use protocols::sim::edl::EdlSimConfig;
use protocols::sim::fastboot::{FastbootConfig, FetchAllow, SetActiveBehaviour};
use protocols::sim::firehose::AnswerPackets;
use protocols::sim::preload::{self, PreloadError};
use protocols::sim::sahara::SaharaFault;
use protocols::sim::{DropWrites, FaultAction, Phone, PhoneBuilder};
use protocols::transport::memory::LinkFaults;

use super::rig::{numbered_phone_builder, rig_bootloader, sim_port};
use super::SimUnit;
use crate::bus::sim::SimBus;
use crate::config::{
    Answer, BootloaderScript, ConfigError, Contents, DropWritesScript, FaultScript, FetchScript,
    FirehosePackets, KeyPath, PhoneScript, PhonesFile, PullCableScript, SaharaScript,
    SetActiveScript, MAX_READ_BACK_BYTES,
};
use crate::events::SlotNumber;
use crate::mode::Mode;
use crate::preflight::CheckedBatch;

/// Serial numbers of phones swapped in are this far past their predecessor's.
const SWAP_SERIAL_OFFSET: u32 = 1000;

/// The phones of `file` on a simulated bus, one per slot (not yet plugged), the slots with the
/// mode each phone arrives in, and how many verdicts the rig gives (swapped-in phones get
/// attempts of their own). Serials default to `first + slot`, as a rig's.
pub struct ScriptedRig {
    pub bus: SimBus,
    pub slots: Vec<(SlotNumber, Mode)>,
    pub units: Vec<SimUnit>,
    pub phones: usize,
}

pub fn scripted_rig(
    batch: &CheckedBatch,
    file: &PhonesFile,
    first: u32,
) -> Result<ScriptedRig, ConfigError> {
    let bus = SimBus::new();
    let mut slots = Vec::new();
    let mut units = Vec::new();
    let mut phones = 0;
    for script in &file.phones {
        let Some(slot) = script.slot else { continue };
        let number = first.saturating_add(u32::from(slot));
        let unit = scripted_unit(&bus, &sim_port(slot), batch, file, script, number)?;
        let mut next = script.swap_at_next_reboot.as_deref();
        let mut current = unit.clone();
        let mut swap_number = number;
        phones += 1;
        while let Some(swap) = next {
            swap_number = swap_number.saturating_add(SWAP_SERIAL_OFFSET);
            let newcomer = scripted_unit(&bus, &sim_port(slot), batch, file, swap, swap_number)?;
            current.swap_on_next_reboot(newcomer.clone());
            current = newcomer;
            next = swap.swap_at_next_reboot.as_deref();
            phones += 1;
        }
        slots.push((slot, script.mode));
        units.push(unit);
    }
    Ok(ScriptedRig {
        bus,
        slots,
        units,
        phones,
    })
}

/// One phone of a phones file on `port` of `bus`, numbered `number` unless it names a serial.
pub fn scripted_unit(
    bus: &SimBus,
    port: &str,
    batch: &CheckedBatch,
    file: &PhonesFile,
    script: &PhoneScript,
    number: u32,
) -> Result<SimUnit, ConfigError> {
    let phone = scripted_phone(batch, file, script, number)?;
    let mut edl = EdlSimConfig::default();
    script_edl(&script.faults, &mut edl);
    let mut bootloader = rig_bootloader(batch);
    script_bootloader(&script.bootloader, &script.faults, &mut bootloader);
    let unit = SimUnit::new(bus, port, phone, bootloader, edl);
    unit.set_link_faults(LinkFaults {
        bytes_per_second: script.faults.rate,
        cut_after_host_bytes: script.faults.disconnect_after,
    });
    Ok(unit)
}

/// The script's bootloader: its settings (download buffer, `fetch`), and the side of its faults
/// it carries out (how it honours `set_active`). What the script leaves out stays as `config`
/// has it.
pub fn script_bootloader(
    settings: &BootloaderScript,
    faults: &FaultScript,
    config: &mut FastbootConfig,
) {
    if let Some(size) = settings.max_download_size {
        config.max_download_size = size;
    }
    if let Some(size) = settings.max_fetch_size {
        config.max_fetch_size = size;
    }
    if let Some(fetch) = &settings.fetch {
        config.fetch_allow = match fetch {
            FetchScript::All => FetchAllow::All,
            FetchScript::None => FetchAllow::None,
            FetchScript::Only(names) => FetchAllow::Only(names.clone()),
        };
    }
    if let Some(behaviour) = faults.set_active {
        config.set_active = match behaviour {
            SetActiveScript::Honoured => SetActiveBehaviour::Honoured,
            SetActiveScript::Ignored => SetActiveBehaviour::IgnoredAfterOkay,
            SetActiveScript::LostOnReboot => SetActiveBehaviour::LostOnReboot,
        };
    }
}

/// The EDL side of the script's faults: the boot ROM's misbehaviour, and the programmer's
/// start-up time and packetisation.
pub fn script_edl(faults: &FaultScript, edl: &mut EdlSimConfig) {
    if let Some(boot) = faults.programmer_boot {
        edl.programmer.boot_time = boot;
    }
    if let Some(rom) = faults.sahara {
        edl.rom.fault = Some(match rom {
            SaharaScript::Silent => SaharaFault::Silent,
            SaharaScript::Garbage => SaharaFault::Garbage,
            SaharaScript::HelloLost => SaharaFault::HelloLost,
            SaharaScript::AbsurdRead { offset, length } => {
                SaharaFault::AbsurdRead { offset, length }
            }
            SaharaScript::AbsurdExecLength(n) => SaharaFault::AbsurdExecLength(n),
        });
    }
    if let Some(packets) = faults.firehose_packets {
        edl.programmer.answer_packets = match packets {
            FirehosePackets::Whole => AnswerPackets::Whole,
            FirehosePackets::Merged => AnswerPackets::Merged,
            FirehosePackets::Split(n) => AnswerPackets::Split(n),
        };
    }
}

/// The phone a script describes, its partitions loaded and its device faults armed.
pub fn scripted_phone(
    batch: &CheckedBatch,
    file: &PhonesFile,
    script: &PhoneScript,
    number: u32,
) -> Result<Phone, ConfigError> {
    scripted_from(
        numbered_phone_builder(batch, number, script.mode),
        file,
        script,
    )
}

/// The phone a script describes, starting from `builder` (what the script leaves out, and the
/// mode it arrives in): its partitions loaded, the programmers its secure boot accepts (the
/// script's list replaces the builder's) and its device faults armed. Link faults (`rate`,
/// `disconnect_after`), the bootloader's settings and the programmer's boot time belong to the
/// host serving it ([`scripted_unit`]).
pub fn scripted_from(
    mut builder: PhoneBuilder,
    file: &PhonesFile,
    script: &PhoneScript,
) -> Result<Phone, ConfigError> {
    let at = |key: KeyPath, problem: String, fix: &str| file.doc.error_at(&key, problem, fix);
    if let Some(serial) = &script.serial {
        builder = builder.serial(serial);
    }
    if let Some(product) = &script.product {
        builder = builder.product(product);
    }
    if let Some(slots) = &script.slots {
        let suffixes: Vec<&str> = slots.iter().map(String::as_str).collect();
        builder = builder.slots(&suffixes);
    }
    let phone = builder.build().map_err(|e| {
        at(
            script.key.clone(),
            format!("cannot build this phone: {e}"),
            "check its slots",
        )
    })?;
    if let Some(accepted) = &script.bootloader.accepted_programmers {
        phone.lock().identity.accepted_programmers = accepted.iter().map(|d| d.0).collect();
    }
    if let Some(current) = &script.current_slot {
        phone.lock().storage.set_active_slot(current).map_err(|e| {
            at(
                script.key.clone().key("current_slot"),
                e.to_string(),
                "name one of the phone's slots",
            )
        })?;
    }
    for (name, contents) in &script.partitions {
        let key = script.key.clone().key("partitions").key(name.as_str());
        preload_partition(&phone, name, contents).map_err(|problem| {
            at(
                key,
                problem,
                "name a partition of the phone (`flashgate sim` prints its layout) and an image that fits it",
            )
        })?;
    }
    arm_faults(&phone, file, script)?;
    Ok(phone)
}

fn preload_partition(phone: &Phone, name: &str, contents: &Contents) -> Result<(), String> {
    let explain = |e: PreloadError| format!("{name}: {e}");
    match contents {
        Contents::Image(path) => {
            let image = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            preload::install_image(phone, name, image)
                .map(|_| ())
                .map_err(|e| format!("{}: {}", path.display(), explain(e)))
        }
        Contents::Fill { byte, size } => preload::fill(phone, name, *byte, *size).map_err(explain),
    }
}

fn arm_faults(phone: &Phone, file: &PhonesFile, script: &PhoneScript) -> Result<(), ConfigError> {
    let faults = &script.faults;
    let key = script.key.clone().key("faults");
    match &faults.drop_writes {
        None => {}
        Some(DropWritesScript::All) => phone.drop_writes(DropWrites::All),
        Some(DropWritesScript::Partitions(names)) => {
            if let Some(unknown) = names
                .iter()
                .find(|n| phone.lock().storage.partition(n).is_none())
            {
                return Err(file.doc.error_at(
                    &key.clone().key("drop_writes"),
                    format!("the phone has no partition {unknown}"),
                    "name its partitions with their slot suffix (system_a)",
                ));
            }
            phone.drop_writes(DropWrites::Partitions(names.clone()));
        }
    }
    match &faults.pull_cable {
        None => {}
        Some(PullCableScript::On(on)) => phone.add_fault(on, FaultAction::PullCable, Some(1)),
        Some(PullCableScript::AtNextReboot) => phone.pull_cable_at_next_reboot(),
    }
    for (on, duration, times) in &faults.hang {
        let action = match duration {
            Some(d) => FaultAction::Delay(*d),
            None => FaultAction::Stall,
        };
        phone.add_fault(on, action, *times);
    }
    for (on, percent) in &faults.disconnect_during {
        phone.add_fault(
            on,
            FaultAction::CutDuringWrite { percent: *percent },
            Some(1),
        );
    }
    for (on, message, times) in &faults.fail {
        phone.add_fault(on, FaultAction::Fail(message.clone()), *times);
    }
    for rule in &faults.answer {
        phone.add_fault(&rule.on, answer_action(&rule.with), rule.times);
    }
    for (i, (on, contents)) in faults.read_back.iter().enumerate() {
        let bytes = read_back_bytes(contents).map_err(|problem| {
            file.doc.error_at(
                &key.clone().key("read_back").index(i),
                problem,
                format!("read-backs are held in memory: at most {MAX_READ_BACK_BYTES} bytes"),
            )
        })?;
        phone.add_fault(on, FaultAction::ReadBack(bytes), None);
    }
    Ok(())
}

fn answer_action(answer: &Answer) -> FaultAction {
    match answer {
        Answer::Garbage => FaultAction::Garbage,
        Answer::TooLong(len) => FaultAction::LongResponse(*len),
        Answer::InfoFlood(every) => FaultAction::EndlessInfo { every: *every },
        Answer::Truncated => FaultAction::Truncated,
        Answer::UnknownPrefix => FaultAction::UnknownPrefix,
        Answer::DataSize(size) => FaultAction::DataSize(*size),
        Answer::Malformed => FaultAction::Malformed,
        Answer::Okay(text) => FaultAction::Okay(text.clone()),
        Answer::ShortData(n) => FaultAction::ShortData(*n),
    }
}

fn read_back_bytes(contents: &Contents) -> Result<Arc<[u8]>, String> {
    match contents {
        Contents::Image(path) => {
            let mut bytes = Vec::new();
            File::open(path)
                .and_then(|f| f.take(MAX_READ_BACK_BYTES + 1).read_to_end(&mut bytes))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if bytes.len() as u64 > MAX_READ_BACK_BYTES {
                return Err(format!("{} is too large", path.display()));
            }
            Ok(bytes.into())
        }
        Contents::Fill { byte, size } => {
            let size = size.unwrap_or(0);
            if size > MAX_READ_BACK_BYTES {
                return Err(format!("a fill of {size} bytes is too large"));
            }
            Ok(vec![*byte; size as usize].into())
        }
    }
}

//! One simulated phone: identity, storage, A/B state and injectable device faults, shared by its
//! fastboot and EDL personalities and kept across re-enumerations.
//!
//! [`Phone`] is a cheap handle (`Arc<Mutex<…>>`): clone it into a fastboot server, later into an
//! EDL server, and into the test that inspects the storage afterwards.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::dynamic::DynamicLayout;
use super::layout::partition_specs;
pub use super::layout::{default_layout, Layout};
pub use super::lifecycle::PhoneMode;
use super::lifecycle::{Ending, Lifecycle, Presence, Transition};
use super::storage::{DropWrites, LunSpec, PartitionSpec, Storage, StorageError, StorageMode};

/// Who the phone says it is, to fastboot (`getvar`) and to Sahara (command mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `getvar serialno` / USB iSerial.
    pub serial: String,
    /// `getvar product`.
    pub product: String,
    /// Sahara serial number (32-bit chip serial; `SERIAL_NUM_READ`).
    pub chip_serial: u32,
    /// Sahara MSM HW ID (`MSM_HW_ID_READ`, v1/v2): MSM id in the upper 32 bits, OEM and model
    /// id below, as Qualcomm reports it.
    pub msm_hw_id: u64,
    /// Sahara v3 chip id (`CHIP_ID_V3_READ`).
    pub chip_id: u32,
    /// Hash of the OEM's root public key (`OEM_PK_HASH_READ`): 32 bytes (SHA-256) or 48
    /// (SHA-384) on newer SoCs.
    pub oem_pk_hash: Vec<u8>,
    /// `SBL_SW_VERSION` (Sahara command 0x07).
    pub sbl_version: u32,
    /// SHA-256 of every programmer this phone's secure boot accepts (its "signed list").
    pub accepted_programmers: Vec<[u8; 32]>,
    /// `getvar secure`: secure boot enabled.
    pub secure: bool,
    /// `getvar unlocked`: bootloader unlocked (fastboot flashing lock/unlock changes it).
    pub unlocked: bool,
    /// `flashing unlock_critical` state (bootloader partitions may be flashed).
    pub critical_unlocked: bool,
    /// `getvar version-bootloader`.
    pub bootloader_version: String,
    /// Variables an OEM's bootloader publishes beyond AOSP's (`getvar imei`), as (name, value).
    pub vendor_variables: Vec<(String, String)>,
}

/// What an injected device fault does to an operation. Each is something a misbehaving real
/// device has been seen to do on the wire; each personality renders it in its own protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Refuse it: fastboot `FAIL<message>`, Firehose NAK with this log line.
    Fail(String),
    /// Answer with bytes that are not a valid response.
    Garbage,
    /// Answer normally, but only after this long.
    Delay(Duration),
    /// A hung device: never answer, swallow whatever the host sends until it leaves.
    Stall,
    /// Answer with one frame of this many bytes: fastboot an `OKAY` frame padded past the
    /// protocol's 256-byte limit (which breaks the AOSP client's next command); Firehose a
    /// `<log>` of this length before the normal answer.
    LongResponse(usize),
    /// Keep the operation busy forever with a progress line every `every`: fastboot `INFO`,
    /// Firehose `<log>`; it never finishes, and stops only when the host leaves.
    EndlessInfo { every: Duration },
    /// fastboot `download`/`fetch`: act as if the host had asked for this many bytes (the
    /// `DATA` answer announces it, and the data phase follows the device's figure). Firehose
    /// answers carry no size: answered normally.
    DataSize(u32),
    /// Answer success without doing the operation: fastboot `OKAY<text>` (e.g. a variable's
    /// value, `0x0` for `getvar:max-download-size`); Firehose the text as a `<log>`, then ACK.
    Okay(String),
    /// A read toward the host (fastboot `fetch`/`upload` after their `DATA`, Firehose `<read>`
    /// after its rawmode ACK) carries only this many bytes, then the closing OKAY/ACK as if it
    /// were complete.
    ShortData(u64),
    /// Reads return these bytes instead of what storage holds (a partition that reads back as
    /// something else than was written): fastboot `fetch` serves them at the partition's
    /// offsets, Firehose `<read>` from the start of the requested range; zeros past their end.
    ReadBack(Arc<[u8]>),
    /// An answer shaped like the protocol's but broken inside: fastboot `DATA` with a size that
    /// is not hex; Firehose a `<data>` document that is not well-formed XML.
    Malformed,
    /// The phone drops off the bus while it writes what this operation writes: once this
    /// percentage of the operation's bytes is in storage it stops, never answers, and ends the
    /// session (the host's link is cut), leaving the partition part-written. The bytes are what
    /// the phone writes for this one command, the only total it knows when it starts: for
    /// fastboot `flash:<partition>` the staged image's data (a sparse image's RAW and FILL
    /// chunks; DONT_CARE writes nothing), for Firehose `<program>` its sectors. Fastboot names
    /// the partition only at `flash:`, after the download, so the cut is during the write,
    /// never during the transfer. Other operations are answered normally.
    CutDuringWrite { percent: u8 },
    /// An answer cut short: fastboot a frame shorter than its four-byte status (`OKA`);
    /// Firehose the first half of its answer document, then nothing.
    Truncated,
    /// An answer whose status is none the protocol has: fastboot a frame with an unknown
    /// four-letter prefix (`BUSY…`); Firehose a well-formed `<data>` document holding no
    /// `<response>` nor `<log>`, only an element no programmer sends.
    UnknownPrefix,
    /// The cable is pulled as this operation arrives: it is never answered, and the phone is
    /// off the bus (its mode, RAM and storage kept, on its battery) until it is plugged in
    /// again. See [`Phone::pull_cable`].
    PullCable,
}

/// Fills `buf` with what a [`FaultAction::ReadBack`] of `bytes` serves `offset` bytes in:
/// its bytes there, zeros past their end.
pub(crate) fn substitute_read(bytes: &[u8], offset: u64, buf: &mut [u8]) {
    buf.fill(0);
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    if let Some(from) = bytes.get(start..) {
        let n = from.len().min(buf.len());
        buf[..n].copy_from_slice(&from[..n]);
    }
}

/// One fault rule: which operation, what happens, how many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// Operation name, matched on whole words: `flash` matches `flash:boot_a`, `oem sha256`
    /// matches `oem sha256 system_a`, `flash:boot_a` matches only that. Fastboot names
    /// operations by their command text; Firehose by its tag (`program`, `configure`, …).
    pub operation: String,
    pub action: FaultAction,
    /// `None`: every time; `Some(n)`: the next n times.
    pub remaining: Option<u32>,
}

impl FaultRule {
    fn matches(&self, operation: &str) -> bool {
        match operation.strip_prefix(self.operation.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with([':', ' ']),
            None => false,
        }
    }
}

/// Injected device faults (link faults — unplug, stall, slow link — live on the transport's
/// `LinkControl`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    pub rules: Vec<FaultRule>,
    /// The cable comes out while the phone is off the bus for its next reboot, `continue` or
    /// power reset: it acknowledges, leaves, and never comes back by itself.
    pub pull_cable_at_next_reboot: bool,
}

impl Faults {
    /// The fault to apply to `operation` now, if any (consumes one use of a counted rule).
    pub fn take(&mut self, operation: &str) -> Option<FaultAction> {
        let index = self.rules.iter().position(|r| r.matches(operation))?;
        let rule = &mut self.rules[index];
        let action = rule.action.clone();
        if let Some(n) = rule.remaining.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.rules.remove(index);
            }
        }
        Some(action)
    }
}

/// Everything one phone is, behind the [`Phone`] handle's lock.
pub struct PhoneState {
    pub identity: Identity,
    pub storage: Storage,
    pub faults: Faults,
    pub mode: PhoneMode,
    pub lifecycle: Lifecycle,
    /// The last session's ending, until its host takes it.
    pub transition: Option<Transition>,
}

/// A shared handle to one simulated phone.
#[derive(Clone)]
pub struct Phone {
    inner: Arc<Mutex<PhoneState>>,
}

impl Phone {
    /// A builder with a realistic default: A/B phone, one UFS LUN (4096-byte sectors), the
    /// partitions of [`default_layout`].
    pub fn builder() -> PhoneBuilder {
        PhoneBuilder::default()
    }

    pub fn from_state(state: PhoneState) -> Phone {
        Phone {
            inner: Arc::new(Mutex::new(state)),
        }
    }

    /// Lock the phone for a compound operation. Personalities hold it per command or per
    /// chunk, never across a transport read.
    pub fn lock(&self) -> MutexGuard<'_, PhoneState> {
        // A panicking test thread must not wedge every other user of the phone.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn identity(&self) -> Identity {
        self.lock().identity.clone()
    }

    pub fn mode(&self) -> PhoneMode {
        self.lock().mode
    }

    pub fn set_mode(&self, mode: PhoneMode) {
        self.lock().mode = mode;
    }

    /// The phone ends the current session with `ending`: its mode moves as its lifecycle
    /// says, and the transition waits for the host ([`Phone::take_transition`]).
    pub fn end_session(&self, ending: Ending) -> Transition {
        let mut state = self.lock();
        let mut transition = state.lifecycle.next(state.mode, ending);
        if transition.presence != Presence::Stays
            && std::mem::take(&mut state.faults.pull_cable_at_next_reboot)
        {
            transition.presence = Presence::Leaves;
        }
        state.mode = transition.mode;
        state.transition = Some(transition);
        transition
    }

    /// The cable is pulled now (a scripted fault): the session ends, and the host takes the
    /// phone off its bus; it keeps its mode and comes back only when plugged in again.
    pub fn pull_cable(&self) -> Transition {
        self.end_session(Ending::CablePulled)
    }

    /// Pull the cable while the phone is off the bus for its next reboot (see
    /// [`Faults::pull_cable_at_next_reboot`]).
    pub fn pull_cable_at_next_reboot(&self) {
        self.lock().faults.pull_cable_at_next_reboot = true;
    }

    /// What the last session's ending did to the phone, once: `None` when the host ended the
    /// session (the phone stays as it was).
    pub fn take_transition(&self) -> Option<Transition> {
        self.lock().transition.take()
    }

    pub fn lifecycle(&self) -> Lifecycle {
        self.lock().lifecycle
    }

    /// Refuse `operation` every time with `message`.
    pub fn fail(&self, operation: &str, message: &str) {
        self.add_fault(operation, FaultAction::Fail(message.to_string()), None);
    }

    /// Answer `operation` with garbage every time.
    pub fn garbage(&self, operation: &str) {
        self.add_fault(operation, FaultAction::Garbage, None);
    }

    /// Delay the answer to `operation` every time.
    pub fn delay(&self, operation: &str, by: Duration) {
        self.add_fault(operation, FaultAction::Delay(by), None);
    }

    pub fn add_fault(&self, operation: &str, action: FaultAction, remaining: Option<u32>) {
        self.lock().faults.rules.push(FaultRule {
            operation: operation.to_string(),
            action,
            remaining,
        });
    }

    pub fn clear_faults(&self) {
        let mut s = self.lock();
        s.faults = Faults::default();
        s.storage.set_drop_writes(DropWrites::None);
    }

    /// Answer OKAY/ACK to writes but store nothing (all, or some partitions).
    pub fn drop_writes(&self, which: DropWrites) {
        self.lock().storage.set_drop_writes(which);
    }

    /// The fault for `operation`, if one is armed (consumes counted rules).
    pub fn take_fault(&self, operation: &str) -> Option<FaultAction> {
        self.lock().faults.take(operation)
    }

    /// Read a whole partition region (tests; bounded by the caller's buffer).
    pub fn read_partition(
        &self,
        name: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), StorageError> {
        self.lock().storage.read_partition(name, offset, buf)
    }

    pub fn write_partition(
        &self,
        name: &str,
        offset: u64,
        data: &[u8],
    ) -> Result<(), StorageError> {
        self.lock().storage.write_partition(name, offset, data)
    }

    /// SHA-256 of `len` bytes of a partition from `offset` (read in chunks under the lock).
    pub fn partition_sha256(
        &self,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<[u8; 32], StorageError> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            self.lock()
                .storage
                .read_partition(name, offset + done, &mut buf[..n])?;
            hasher.update(&buf[..n]);
            done += n as u64;
        }
        Ok(hasher.finalize().into())
    }

    pub fn current_slot(&self) -> Option<String> {
        self.lock().storage.current_slot()
    }
}

/// Builds a [`Phone`]; every setting has a realistic default.
#[derive(Debug, Clone)]
pub struct PhoneBuilder {
    identity: Identity,
    slots: Vec<String>,
    sector_size: u32,
    lun0_size: Option<u64>,
    /// (name, size, slotted)
    partitions: Vec<(String, u64, bool)>,
    extra_luns: Vec<LunSpec>,
    storage: StorageMode,
    mode: PhoneMode,
    lifecycle: Lifecycle,
    dynamic: Option<DynamicLayout>,
}

impl Default for PhoneBuilder {
    fn default() -> Self {
        PhoneBuilder {
            identity: Identity {
                serial: "FGSIM0001".into(),
                product: "flashgate_sim".into(),
                chip_serial: 0x0c0f_fee1,
                msm_hw_id: 0x001b_80e1_0000_0000,
                chip_id: 0x0000_01b8,
                oem_pk_hash: Sha256::digest(b"flashgate simulated OEM root key").to_vec(),
                sbl_version: 0,
                accepted_programmers: Vec::new(),
                secure: true,
                // Phones on a flashing line arrive unlocked (a locked bootloader refuses
                // `flash`, as real ones do) and are locked at the end of the line.
                unlocked: true,
                critical_unlocked: false,
                bootloader_version: "FGSIM-ABL-1.0".into(),
                vendor_variables: Vec::new(),
            },
            slots: vec!["a".into(), "b".into()],
            sector_size: 4096,
            lun0_size: None,
            partitions: Vec::new(),
            extra_luns: Vec::new(),
            storage: StorageMode::Memory,
            mode: PhoneMode::Bootloader,
            lifecycle: Lifecycle::default(),
            dynamic: None,
        }
    }
}

impl PhoneBuilder {
    /// Serial (fastboot `serialno`); also seeds the GPT GUIDs and the Sahara chip serial.
    pub fn serial(mut self, serial: &str) -> Self {
        self.identity.serial = serial.to_string();
        let d = Sha256::digest(serial.as_bytes());
        self.identity.chip_serial = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        self
    }
    pub fn product(mut self, product: &str) -> Self {
        self.identity.product = product.to_string();
        self
    }
    pub fn chip_serial(mut self, v: u32) -> Self {
        self.identity.chip_serial = v;
        self
    }
    pub fn msm_hw_id(mut self, v: u64) -> Self {
        self.identity.msm_hw_id = v;
        self
    }
    pub fn chip_id(mut self, v: u32) -> Self {
        self.identity.chip_id = v;
        self
    }
    pub fn oem_pk_hash(mut self, hash: &[u8]) -> Self {
        self.identity.oem_pk_hash = hash.to_vec();
        self
    }
    pub fn sbl_version(mut self, v: u32) -> Self {
        self.identity.sbl_version = v;
        self
    }
    /// Accept a programmer whose SHA-256 is this (may be called repeatedly).
    pub fn accept_programmer(mut self, sha256: [u8; 32]) -> Self {
        self.identity.accepted_programmers.push(sha256);
        self
    }
    /// Accept this programmer file's contents.
    pub fn accept_programmer_bytes(self, programmer: &[u8]) -> Self {
        self.accept_programmer(Sha256::digest(programmer).into())
    }
    pub fn secure(mut self, secure: bool) -> Self {
        self.identity.secure = secure;
        self
    }
    pub fn unlocked(mut self, unlocked: bool) -> Self {
        self.identity.unlocked = unlocked;
        self
    }
    pub fn bootloader_version(mut self, v: &str) -> Self {
        self.identity.bootloader_version = v.to_string();
        self
    }
    /// A variable the bootloader publishes beyond AOSP's, e.g. `("imei", "356938035643809")`.
    pub fn vendor_variable(mut self, name: &str, value: &str) -> Self {
        self.identity
            .vendor_variables
            .push((name.to_string(), value.to_string()));
        self
    }
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }
    /// Slot suffixes (`&["a", "b"]`); empty for a phone without A/B.
    pub fn slots(mut self, suffixes: &[&str]) -> Self {
        self.slots = suffixes.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Sector size of LUN 0 (4096 UFS, 512 eMMC).
    pub fn sector_size(mut self, sector_size: u32) -> Self {
        self.sector_size = sector_size;
        self
    }
    /// Size of LUN 0 (default: just fits its partitions).
    pub fn lun_size(mut self, bytes: u64) -> Self {
        self.lun0_size = Some(bytes);
        self
    }
    /// Add a partition with exactly this name to LUN 0. The first explicit partition replaces
    /// the default layout.
    pub fn partition(mut self, name: &str, size_bytes: u64) -> Self {
        self.partitions.push((name.to_string(), size_bytes, false));
        self
    }
    /// Add `name_<slot>` for every slot to LUN 0.
    pub fn slotted_partition(mut self, name: &str, size_bytes: u64) -> Self {
        self.partitions.push((name.to_string(), size_bytes, true));
        self
    }
    /// Add another LUN (UFS LUNs 1, 2, … in order).
    pub fn lun(mut self, spec: LunSpec) -> Self {
        self.extra_luns.push(spec);
        self
    }
    /// Keep partitions as sparse files `DIR/<name>.img` (default: in memory).
    pub fn storage_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage = StorageMode::Files(dir.into());
        self
    }
    /// Keep partitions in unlinked sparse temporary files: out of the process's memory, gone
    /// with the phone ([`StorageMode::Temporary`]).
    pub fn temporary_storage(mut self) -> Self {
        self.storage = StorageMode::Temporary;
        self
    }
    pub fn mode(mut self, mode: PhoneMode) -> Self {
        self.mode = mode;
        self
    }
    /// Where a normal boot ends (default: Android, gone from the station's bus).
    pub fn boots_to(mut self, mode: PhoneMode) -> Self {
        self.lifecycle.boots_to = mode;
        self
    }
    pub fn lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = lifecycle;
        self
    }
    /// A dynamic-partition phone (Android 10+): a physical `super` of `super_size` bytes whose
    /// LP metadata holds `system`, `vendor`, … per slot ([`super::dynamic`]). Without explicit
    /// partitions the physical layout is [`super::layout::dynamic_layout`]; with them, `super` is
    /// added to them.
    pub fn dynamic_partitions(mut self, super_size: u64) -> Self {
        let logical = self.dynamic.take().map(|d| d.logical).unwrap_or_default();
        self.dynamic = Some(DynamicLayout {
            super_size,
            logical,
        });
        self
    }
    /// A logical partition of the first slot (`name` without suffix; the other slots get an
    /// empty one), replacing the default set. Needs [`Self::dynamic_partitions`].
    pub fn logical_partition(mut self, name: &str, size_bytes: u64) -> Self {
        let dynamic = self.dynamic.get_or_insert_with(|| DynamicLayout::new(0));
        dynamic.logical.push((name.to_string(), size_bytes));
        self
    }

    /// LUN 0's partitions as they will be created.
    pub fn lun0_partitions(&self) -> Vec<PartitionSpec> {
        partition_specs(&self.partitions, &self.slots, self.dynamic.as_ref())
    }

    pub fn build(self) -> Result<Phone, StorageError> {
        let mut luns = vec![LunSpec {
            sector_size: self.sector_size,
            size_bytes: self.lun0_size,
            partitions: self.lun0_partitions(),
        }];
        luns.extend(self.extra_luns.iter().cloned());
        let mut storage = Storage::create(&self.identity.serial, &luns, self.storage.clone())?;
        if let Some(dynamic) = &self.dynamic {
            dynamic
                .install(&mut storage)
                .map_err(|e| StorageError::Layout(format!("super: {e}")))?;
        }
        Ok(Phone::from_state(PhoneState {
            identity: self.identity,
            storage,
            faults: Faults::default(),
            mode: self.mode,
            lifecycle: self.lifecycle,
            transition: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_phone_is_ab_with_a_active() {
        let phone = Phone::builder().build().unwrap();
        let s = phone.lock();
        assert_eq!(s.storage.slot_suffixes(), ["a", "b"]);
        assert_eq!(s.storage.current_slot().as_deref(), Some("a"));
        for name in [
            "boot_a", "boot_b", "system_a", "system_b", "vbmeta_a", "userdata",
        ] {
            assert!(s.storage.partition(name).is_some(), "{name}");
        }
        assert!(s.storage.partition("system").is_none());
        assert_eq!(s.storage.partition("boot_a").unwrap().sector_size, 4096);
        assert_eq!(s.storage.memory_in_use(), 2 * MEMORY_CHUNK_FOR_TEST);
    }
    // The GPT's primary and backup copies each take one memory chunk.
    const MEMORY_CHUNK_FOR_TEST: u64 = super::super::storage::MEMORY_CHUNK as u64;

    #[test]
    fn fault_rules_match_whole_words_and_count_down() {
        let phone = Phone::builder().build().unwrap();
        phone.add_fault("flash", FaultAction::Fail("nope".into()), Some(2));
        phone.garbage("oem sha256");
        assert_eq!(phone.take_fault("flashing:unlock"), None);
        assert_eq!(
            phone.take_fault("flash:boot_a"),
            Some(FaultAction::Fail("nope".into()))
        );
        assert!(phone.take_fault("flash").is_some());
        assert_eq!(phone.take_fault("flash:boot_a"), None, "used up");
        assert_eq!(
            phone.take_fault("oem sha256 system_a"),
            Some(FaultAction::Garbage)
        );
        assert_eq!(phone.take_fault("oem sha256x"), None);
    }

    #[test]
    fn builder_explicit_partitions_and_no_slots() {
        let phone = Phone::builder()
            .slots(&[])
            .sector_size(512)
            .partition("boot", 1 << 20)
            .slotted_partition("system", 2 << 20)
            .build()
            .unwrap();
        let s = phone.lock();
        assert!(s.storage.slot_suffixes().is_empty());
        assert_eq!(s.storage.current_slot(), None);
        assert_eq!(s.storage.partition("system").unwrap().size_bytes, 2 << 20);
        assert_eq!(s.storage.partitions().len(), 2);
    }

    #[test]
    fn handle_is_shared() {
        let phone = Phone::builder().build().unwrap();
        let other = phone.clone();
        other.write_partition("boot_b", 4096, b"ANDROID!").unwrap();
        let mut buf = [0u8; 8];
        phone.read_partition("boot_b", 4096, &mut buf).unwrap();
        assert_eq!(&buf, b"ANDROID!");
        let expect: [u8; 32] = Sha256::digest([0u8; 4096]).into();
        assert_eq!(phone.partition_sha256("boot_b", 0, 4096).unwrap(), expect);
    }
}

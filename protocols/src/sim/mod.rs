//! Simulated phones: one storage, three personalities (bootloader fastboot, fastbootd and
//! EDL), one lifecycle, served over any transport.
//!
//! # The shared model
//! - [`phone::Phone`] (a cheap `Clone` handle around `Arc<Mutex<PhoneState>>`): build one with
//!   `Phone::builder()…build()` — defaults are a realistic unlocked, secure A/B phone with one
//!   UFS LUN (4096-byte sectors) and `boot_a/_b`, `vendor_boot_*`, `dtbo_*`, `vbmeta_*`,
//!   `system_*`, `vendor_*`, `misc`, `metadata`, `persist`, `userdata`; `.storage_dir(DIR)` keeps
//!   partitions as sparse files `DIR/<name>.img` instead of memory, `.temporary_storage()` as
//!   unlinked sparse temporary files (a station's rig of many phones). Clone the handle into each
//!   personality and into the test that inspects storage; it survives re-enumeration.
//! - [`storage::Storage`] (`phone.lock().storage`): LUNs carrying real GPTs
//!   (`read_lun`/`write_lun`/`discard_lun` for EDL's sector view, `read_partition`/
//!   `write_partition`/`discard_partition` by label, `partition(name)` → LUN, LBAs, size).
//!   Writes into a partition's range land in that partition's region, so both personalities see
//!   the same bytes. A/B state (`current_slot`, `set_active_slot`, `slot(s)`) lives in the GPT
//!   attributes of `boot_<s>` (Qualcomm's bits 48–55), so a GPT read over EDL shows it too.
//! - Device faults: `phone.fail(op, msg)`, `phone.garbage(op)`, `phone.delay(op, d)`,
//!   `phone.add_fault(op, action, Some(n))` for the next n times (every
//!   [`phone::FaultAction`]: stall, over-long answer, endless INFO/log lines, another DATA
//!   size, OKAY without doing it, short or substituted read-back, malformed answer), and
//!   `phone.drop_writes(DropWrites::All | Partitions(..))` (answer OKAY, store nothing).
//!   `op` matches whole words: the fastboot personality names operations by their command text
//!   (`flash:boot_a`, `getvar:product`, `download`, `oem sha256 system_a`; a rule `flash`
//!   matches every flash), Firehose by its tag (`program`, `read`). Link faults (unplug, a cut
//!   after N host bytes, stall, slow) are on [`crate::transport::memory::LinkControl`]
//!   ([`crate::transport::memory::LinkFaults`] to arm them on every link to a phone); boot ROM
//!   misbehaviour on [`sahara::SaharaFault`]; how a programmer cuts its XML into USB transfers
//!   on [`firehose::AnswerPackets`].
//!
//! - A dynamic-partition phone (Android 10+): `.dynamic_partitions(SUPER_SIZE)` gives it a
//!   physical `super` whose LP metadata ([`crate::lp`]) holds `system`, `system_ext`,
//!   `product`, `vendor`, `odm` per slot in `qti_dynamic_partitions_a/_b` ([`dynamic`]).
//!
//! # Fastboot personalities
//! [`fastboot::FastbootDevice::serve`] answers one host over the device end of a link until it
//! disconnects or a reboot/continue/boot ends the session ([`fastboot::SessionEnd`]).
//! `serve_tcp` ([`host::tcp`]) accepts fastboot TCP connections one after another. The same
//! device is the bootloader or, after `reboot-fastboot`, fastbootd (`is-userspace: yes`),
//! which knows the logical partitions of the current slot: `is-logical`, `partition-size`,
//! `super-partition-name`, `flash`/`erase` through their extents, `create-`, `delete-`,
//! `resize-logical-partition` and `update-super[:wipe]`, answered as AOSP's fastbootd does.
//! The bootloader refuses logical partitions ("Partition should be flashed in fastbootd") and
//! flashes `super` whole. [`fastboot::FastbootConfig::default`]: max-download-size 256 MiB,
//! max-fetch-size 256 MiB, `fetch:` limited to fastbootd's list (`vendor_boot*`) and refused
//! when locked — set `fetch_allow: FetchAllow::All` for a phone whose station verifies by
//! reading back.
//!
//! # Lifecycle and hosts
//! [`lifecycle`] is the one table of what each ending of a session does to the phone (its
//! [`phone::PhoneMode`], and whether and when it is back on the bus in which personality).
//! Personalities report endings with [`Phone::end_session`]; every host ([`host`]: fastboot
//! TCP, a pty, FunctionFS; the station's simulated bus) carries out
//! [`Phone::take_transition`] and decides nothing itself.

pub mod dynamic;
pub mod edl;
pub mod fastboot;
pub mod firehose;
pub mod firehose_expr;
pub mod host;
pub mod layout;
pub mod lifecycle;
pub mod phone;
pub mod preload;
pub mod storage;

pub use fastboot::{FastbootConfig, FastbootDevice, FetchAllow, SessionEnd};
pub use lifecycle::{BusPersonality, Ending, Lifecycle, Presence, RebootTo, Transition};
pub use phone::{FaultAction, Identity, Phone, PhoneBuilder, PhoneMode};
pub use storage::{DropWrites, LunSpec, PartitionSpec, Storage, StorageError, StorageMode};
pub mod sahara;
pub mod sahara_elf;

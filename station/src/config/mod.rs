//! Station configuration: `station.yaml`, product manifests and work orders, loaded strictly
//! (unknown keys refused, every error placed by file, line and key) into plain structs.

mod activation;
mod error;
mod files;
mod flash_plan;
mod fleet;
mod identity;
mod image_path;
mod names;
mod phone_answers;
mod phone_bootloader;
mod phone_faults;
mod phones;
mod product;
mod region;
mod sizes;
mod station;
mod work_order;
mod yaml;
mod yaml_bounds;

pub use activation::{ActivationClient, ClientLocation, VerifyMethod};
pub use error::{ConfigError, KeyPath, KeySegment};
pub use files::ImageFile;
pub use flash_plan::{
    AbSlot, EdlPlan, FastbootPlan, FastbootStep, FastbootdPlan, SlotSelection, StorageKind,
};
pub use fleet::{
    FleetConfig, OfflinePolicy, PasswordSource, TlsMode, DEFAULT_PLACE_LEASE, MAX_OFFLINE_ALLOWANCE,
};
pub use identity::{
    check_unit_code, check_variable_name, EdlIdentity, Identity, UnitCodeSource, MAX_UNIT_CODE_LEN,
};
pub use image_path::{resolve_inside, ImagePath, PathEscape};
pub use names::check_identifier;
pub use phone_answers::{MAX_LONG_ANSWER, MAX_OKAY_TEXT};
pub use phone_bootloader::{
    BootloaderScript, FetchScript, MAX_ACCEPTED_PROGRAMMERS, MAX_FETCH_NAMES, MAX_TRANSFER_LIMIT,
    MIN_TRANSFER_LIMIT,
};
pub use phone_faults::{
    Answer, AnswerScript, DropWritesScript, FaultScript, FirehosePackets, PullCableScript,
    SaharaScript, SetActiveScript, MAX_FAULT_RULES,
};
pub use phones::{Contents, PhoneScript, PhonesFile, MAX_READ_BACK_BYTES};
pub use product::{ImageSet, ProductManifest};
pub use region::RegionCode;
pub use sizes::DeclaredSizes;
pub use station::{
    check_operator, simulated_journal_path, Limits, LogRetention, Retries, SlotBinding, SlotConfig,
    StationConfig, Timeouts, DEFAULT_STOP_LINE_AFTER, MAX_SLOTS,
};
pub use work_order::WorkOrder;
pub use yaml::{UniqueMap, YamlDocument};
#[cfg(test)]
mod product_tests;

#[cfg(test)]
mod reference_tests;

//! `getvar` variable names, typed: one spelling table used by the host to ask and by the
//! simulated device to answer (AOSP `fastboot/constants.h`, the README's "Client Variables",
//! and the ABL variables Qualcomm bootloaders publish).
//!
//! Names without a known spelling stay representable as [`Variable::Other`] (OEM variables,
//! newer AOSP ones the station does not use), so nothing a device or host says is lost.

use std::fmt;

/// One `getvar` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variable<'a> {
    /// `all`: every variable, as INFO lines, then OKAY.
    All,
    Version,
    VersionBootloader,
    VersionBaseband,
    Product,
    SerialNo,
    Secure,
    Unlocked,
    /// ABL's `critical-unlocked` (the `flashing unlock_critical` state).
    CriticalUnlocked,
    MaxDownloadSize,
    /// The largest single `fetch:` answer (fastbootd; some vendor bootloaders).
    MaxFetchSize,
    CurrentSlot,
    SlotCount,
    /// `yes` in fastbootd (userspace fastboot), `no` in the bootloader.
    IsUserspace,
    /// The physical partition holding the logical ones (`super`), fastbootd.
    SuperPartitionName,
    SnapshotUpdateStatus,
    Variant,
    HwRevision,
    /// ABL's `logical-block-size`.
    LogicalBlockSize,
    /// `has-slot:<partition base name>`.
    HasSlot(&'a str),
    PartitionSize(&'a str),
    PartitionType(&'a str),
    /// `is-logical:<partition>`: inside `super` (fastbootd).
    IsLogical(&'a str),
    /// `slot-successful:<slot>` (slot letter, some bootloaders take `_a`).
    SlotSuccessful(&'a str),
    SlotUnbootable(&'a str),
    SlotRetryCount(&'a str),
    /// Any other name, kept as sent (an OEM variable, or one this table does not type).
    Other(&'a str),
}

/// Every variable without an argument, in the order `getvar:all` lists them.
const PLAIN: &[Variable<'static>] = &[
    Variable::Version,
    Variable::VersionBootloader,
    Variable::VersionBaseband,
    Variable::Product,
    Variable::SerialNo,
    Variable::Secure,
    Variable::Unlocked,
    Variable::CriticalUnlocked,
    Variable::MaxDownloadSize,
    Variable::MaxFetchSize,
    Variable::IsUserspace,
    Variable::SuperPartitionName,
    Variable::SnapshotUpdateStatus,
    Variable::Variant,
    Variable::HwRevision,
    Variable::LogicalBlockSize,
    Variable::SlotCount,
    Variable::CurrentSlot,
    Variable::All,
];

type Qualified = for<'a> fn(&'a str) -> Variable<'a>;

/// Every variable that takes an argument after `:`.
const QUALIFIED: &[Qualified] = &[
    |a| Variable::HasSlot(a),
    |a| Variable::PartitionSize(a),
    |a| Variable::PartitionType(a),
    |a| Variable::IsLogical(a),
    |a| Variable::SlotSuccessful(a),
    |a| Variable::SlotUnbootable(a),
    |a| Variable::SlotRetryCount(a),
];

impl<'a> Variable<'a> {
    /// The variable a name means: a typed one when the table knows it, else `Other(name)`.
    /// `has-slot:system` is `HasSlot("system")`; an empty argument stays `HasSlot("")` (the
    /// command codec refuses it).
    pub fn parse(name: &'a str) -> Variable<'a> {
        if let Some(var) = PLAIN.iter().find(|v| v.qualifier() == name) {
            return *var;
        }
        if let Some((qualifier, arg)) = name.split_once(':') {
            if let Some(make) = QUALIFIED
                .iter()
                .find(|make| make("").qualifier() == qualifier)
            {
                return make(arg);
            }
        }
        Variable::Other(name)
    }

    /// The name before any `:argument`: the one place each name is spelled.
    pub fn qualifier(&self) -> &'a str {
        match *self {
            Variable::All => "all",
            Variable::Version => "version",
            Variable::VersionBootloader => "version-bootloader",
            Variable::VersionBaseband => "version-baseband",
            Variable::Product => "product",
            Variable::SerialNo => "serialno",
            Variable::Secure => "secure",
            Variable::Unlocked => "unlocked",
            Variable::CriticalUnlocked => "critical-unlocked",
            Variable::MaxDownloadSize => "max-download-size",
            Variable::MaxFetchSize => "max-fetch-size",
            Variable::CurrentSlot => "current-slot",
            Variable::SlotCount => "slot-count",
            Variable::IsUserspace => "is-userspace",
            Variable::SuperPartitionName => "super-partition-name",
            Variable::SnapshotUpdateStatus => "snapshot-update-status",
            Variable::Variant => "variant",
            Variable::HwRevision => "hw-revision",
            Variable::LogicalBlockSize => "logical-block-size",
            Variable::HasSlot(_) => "has-slot",
            Variable::PartitionSize(_) => "partition-size",
            Variable::PartitionType(_) => "partition-type",
            Variable::IsLogical(_) => "is-logical",
            Variable::SlotSuccessful(_) => "slot-successful",
            Variable::SlotUnbootable(_) => "slot-unbootable",
            Variable::SlotRetryCount(_) => "slot-retry-count",
            Variable::Other(name) => name,
        }
    }

    /// The argument of a qualified variable (`system` of `has-slot:system`).
    pub fn argument(&self) -> Option<&'a str> {
        match *self {
            Variable::HasSlot(a)
            | Variable::PartitionSize(a)
            | Variable::PartitionType(a)
            | Variable::IsLogical(a)
            | Variable::SlotSuccessful(a)
            | Variable::SlotUnbootable(a)
            | Variable::SlotRetryCount(a) => Some(a),
            _ => None,
        }
    }

    /// Every variable without an argument but `all`, in the order `getvar:all` lists them.
    pub fn plain() -> impl Iterator<Item = Variable<'static>> {
        PLAIN.iter().copied().filter(|v| *v != Variable::All)
    }

    /// Every qualified variable, built with `argument`.
    pub fn qualified(argument: &'a str) -> impl Iterator<Item = Variable<'a>> {
        QUALIFIED.iter().map(move |make| make(argument))
    }
}

impl<'a> From<&'a str> for Variable<'a> {
    fn from(name: &'a str) -> Self {
        Variable::parse(name)
    }
}

impl<'a> From<&'a String> for Variable<'a> {
    fn from(name: &'a String) -> Self {
        Variable::parse(name)
    }
}

impl fmt::Display for Variable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.qualifier())?;
        match self.argument() {
            Some(arg) => write!(f, ":{arg}"),
            None => Ok(()),
        }
    }
}

//! A package against the storage it is written to, as far as the product declares it: the
//! sector size of the storage kind, and the LUNs with their sizes. What a programmer would
//! refuse (or, worse, write somewhere unintended) on every phone is refused once, here.

use std::collections::{BTreeMap, BTreeSet};

use super::expr::{PatchValue, SectorExpr};
use super::{Origin, Package, PackageError, Step};

/// The storage a package is checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskLayout {
    /// Sector size of the storage kind (UFS 4096, eMMC 512), when known.
    pub sector_size: Option<usize>,
    /// Sectors of each LUN. When empty, sizes are unknown: sector ranges and
    /// `NUM_DISK_SECTORS` expressions are not checked (the programmer evaluates them on the
    /// phone), only that each patch targets a LUN some program line writes.
    pub lun_sectors: BTreeMap<u32, u64>,
}

/// Checks every line of `package` against `layout`.
pub fn check_layout(package: &Package, layout: &DiskLayout) -> Result<(), PackageError> {
    let written: BTreeSet<u32> = package
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Program(p) => Some(p.lun),
            Step::Erase(e) => Some(e.lun),
            Step::Patch(_) => None,
        })
        .collect();
    for step in &package.steps {
        let (origin, lun, sector_size) = match step {
            Step::Program(p) => (&p.origin, p.lun, p.sector_size),
            Step::Erase(e) => (&e.origin, e.lun, e.sector_size),
            Step::Patch(p) => (&p.origin, p.lun, p.sector_size),
        };
        if let Some(expected) = layout.sector_size.filter(|&s| s != sector_size) {
            return Err(PackageError::SectorSizeMismatch {
                origin: origin.clone(),
                found: sector_size,
                expected,
            });
        }
        if let Step::Patch(_) = step {
            if !written.contains(&lun) && !layout.lun_sectors.contains_key(&lun) {
                let mut known: Vec<u32> = written.iter().copied().collect();
                known.extend(layout.lun_sectors.keys());
                known.sort_unstable();
                known.dedup();
                return Err(PackageError::PatchLunUnknown {
                    origin: origin.clone(),
                    lun,
                    known,
                });
            }
        }
        if layout.lun_sectors.is_empty() {
            continue;
        }
        let Some(&disk_sectors) = layout.lun_sectors.get(&lun) else {
            return Err(PackageError::UndeclaredLun {
                origin: origin.clone(),
                lun,
                declared: layout.lun_sectors.keys().copied().collect(),
            });
        };
        let disk = Disk {
            origin,
            lun,
            disk_sectors,
        };
        match step {
            Step::Program(p) => {
                let start = disk.eval("start_sector", &p.start_sector)?;
                let sectors = if p.num_partition_sectors > 0 {
                    p.num_partition_sectors
                } else {
                    p.data_bytes.div_ceil(p.sector_size as u64)
                };
                disk.range(&format!("partition {}", p.label), start, sectors)?;
            }
            Step::Erase(e) => {
                let start = disk.eval("start_sector", &e.start_sector)?;
                disk.range("the erase", start, e.num_partition_sectors)?;
            }
            Step::Patch(p) => {
                let start = disk.eval("start_sector", &p.start_sector)?;
                disk.range("the patch", start, 1)?;
                match PatchValue::parse(&p.value) {
                    Ok(PatchValue::Number(value)) => {
                        disk.eval_parsed("value", &p.value, &value)?;
                    }
                    Ok(PatchValue::Crc32 { start, length }) => {
                        let first = disk.eval_parsed("value", &p.value, &start)?;
                        let bytes = disk.eval_parsed("value", &p.value, &length)?;
                        let sectors = bytes.div_ceil(p.sector_size as u64);
                        disk.range("the CRC32 range of the patch value", first, sectors)?;
                    }
                    Err(detail) => {
                        return Err(PackageError::BadExpression {
                            origin: origin.clone(),
                            attribute: "value",
                            value: p.value.clone(),
                            detail,
                        })
                    }
                }
            }
        }
    }
    Ok(())
}

struct Disk<'a> {
    origin: &'a Origin,
    lun: u32,
    disk_sectors: u64,
}

impl Disk<'_> {
    fn eval(&self, attribute: &'static str, text: &str) -> Result<u64, PackageError> {
        let expr = SectorExpr::parse(text).map_err(|detail| PackageError::BadExpression {
            origin: self.origin.clone(),
            attribute,
            value: text.to_owned(),
            detail,
        })?;
        self.eval_parsed(attribute, text, &expr)
    }

    fn eval_parsed(
        &self,
        attribute: &'static str,
        text: &str,
        expr: &SectorExpr,
    ) -> Result<u64, PackageError> {
        expr.eval(self.disk_sectors)
            .map_err(|e| PackageError::Unevaluable {
                origin: self.origin.clone(),
                attribute,
                value: text.to_owned(),
                lun: self.lun,
                disk_sectors: self.disk_sectors,
                detail: e.to_string(),
            })
    }

    fn range(&self, what: &str, start: u64, sectors: u64) -> Result<(), PackageError> {
        let end = start.saturating_add(sectors);
        if end > self.disk_sectors {
            return Err(PackageError::PastDisk {
                origin: self.origin.clone(),
                what: what.to_owned(),
                lun: self.lun,
                start,
                end,
                disk_sectors: self.disk_sectors,
            });
        }
        Ok(())
    }
}

//! Verification of the activation client on the phone: read back only what is needed (LP
//! metadata when the client is in a logical partition of `super`, the filesystem's metadata,
//! the client's blocks) through fastboot `fetch:` here, or through Firehose `<read>` before an
//! EDL unit's reset (`edl_verify.rs`), or ask for a device digest; then compare with the
//! region's allow-listed SHA-256.

use std::io;

use protocols::fastboot::{Fastboot, FastbootError};
use protocols::transport::Transport;

use crate::build_prop::read_build_prop;
use crate::config::{ClientLocation, VerifyMethod};
use crate::digest::Sha256Digest;
use crate::image::{CacheConfig, FindError, Finder};
use crate::preflight::{hash_range, MAX_CLIENT_SIZE};
use crate::read_at::{CountingReader, ReadAt};
use crate::verdict::Failure;

use super::failure::from_fastboot;
use super::Attempt;

/// A phone partition as a random-access source, read through `fetch:`. Owns the client so
/// the ext4 reader can take it by value; it is handed back after hashing.
pub struct FetchSource {
    pub client: Fastboot<Box<dyn Transport>>,
    pub partition: String,
    /// The protocol error behind the last failed read, for an exact verdict.
    pub last_error: Option<FastbootError>,
}

impl ReadAt for FetchSource {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut out = &mut buf[..];
        let want = out.len() as u64;
        match self
            .client
            .fetch_partition(&self.partition, offset, Some(want), &mut out)
        {
            Ok(n) if n == want => Ok(()),
            Ok(n) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("fetch of {} returned {n} of {want} bytes", self.partition),
            )),
            Err(e) => {
                let text = e.to_string();
                self.last_error = Some(e);
                Err(io::Error::other(text))
            }
        }
    }
}

/// What verification found.
pub struct Found {
    pub sha256: Option<Sha256Digest>,
    pub method: VerifyMethod,
    pub bytes_read: u64,
    /// The logical partition the client was read from, as the phone's metadata names it
    /// (`system_b`), when it lives in `super`.
    pub logical_partition: Option<String>,
    /// The build id the phone holds, when its `build.prop` was read back (see [`BuildRead`]).
    pub build: BuildRead,
}

/// What the read-back of the phone's `build.prop` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildRead {
    /// Not read: the client is a raw range or a device digest, or the client itself was not
    /// found (no filesystem read to go on).
    NotRead,
    /// Read at this path: the `ro.build.display.id` it sets, if any.
    Read {
        path: String,
        build_id: Option<String>,
    },
    /// No `build.prop` at the path pre-flight found it at in the image.
    Absent { path: String },
}

impl BuildRead {
    /// The build id the phone holds, for its journal row.
    pub fn build_id(&self) -> Option<&str> {
        match self {
            Self::Read { build_id, .. } => build_id.as_deref(),
            Self::NotRead | Self::Absent { .. } => None,
        }
    }
}

/// Hash the activation client on `partition` (slot suffix included) of the phone behind
/// `client`. Returns the client back (so the job can go on) and what was found, or the failure.
pub fn activation_client(
    attempt: &Attempt<'_>,
    client: Fastboot<Box<dyn Transport>>,
    partition: &str,
) -> (Fastboot<Box<dyn Transport>>, Result<Found, Failure>) {
    let wanted = &attempt.context.batch.image_set.activation_client;
    let step = format!("verify {partition} {}", wanted.location);
    let mut client = client;
    if let (ClientLocation::RawRange { offset, length }, VerifyMethod::DeviceDigest) =
        (&wanted.location, wanted.verify)
    {
        let found = client
            .oem_sha256(partition, Some((*offset, *length)))
            .map(|digest| Found {
                sha256: Some(Sha256Digest(digest)),
                method: VerifyMethod::DeviceDigest,
                bytes_read: 0,
                logical_partition: None,
                build: BuildRead::NotRead,
            })
            .map_err(|e| from_fastboot(attempt.unit(), &step, &e));
        return (client, found);
    }
    let metadata_slot = match wanted.location.logical_partition() {
        None => 0,
        Some(_) => match client.current_slot() {
            Ok(current) => metadata_slot(current.as_deref()),
            Err(e) => return (client, Err(from_fastboot(attempt.unit(), &step, &e))),
        },
    };
    let source = FetchSource {
        client,
        partition: partition.to_string(),
        last_error: None,
    };
    let (mut source, found) = read_back(attempt, source, partition, metadata_slot);
    let found = found
        .map(|found| Found {
            method: VerifyMethod::HostReadback,
            ..found
        })
        .map_err(|e| match e {
            ReadBackError::Source(detail) => {
                source_failure(attempt, &step, source.last_error.take(), detail)
            }
            ReadBackError::Verdict(failure) => failure,
        });
    (source.client, found)
}

/// Why a read-back found nothing to judge.
pub(super) enum ReadBackError {
    /// The source failed (the link, or the device refused a read): the caller names the
    /// protocol error behind it.
    Source(String),
    /// What was read is not what was flashed (unreadable LP metadata or filesystem).
    Verdict(Failure),
}

/// Hash the activation client on `source`, the phone's `partition` read at byte offsets (only
/// the bytes needed: the range, or LP metadata of `metadata_slot`, the filesystem's metadata
/// and the file). The source is handed back whatever the outcome; the method in the answer is
/// left for the caller to set.
pub(super) fn read_back<S: ReadAt + Send>(
    attempt: &Attempt<'_>,
    source: S,
    partition: &str,
    metadata_slot: u32,
) -> (S, Result<Found, ReadBackError>) {
    let wanted = &attempt.context.batch.image_set.activation_client;
    match &wanted.location {
        ClientLocation::RawRange { offset, length } => {
            let mut source = CountingReader::new(source);
            let digest = hash_range(&mut source, *offset, *length);
            let bytes_read = source.bytes_read();
            let found = digest
                .map(|sha256| Found {
                    sha256: Some(sha256),
                    method: wanted.verify,
                    bytes_read,
                    logical_partition: None,
                    build: BuildRead::NotRead,
                })
                .map_err(|e| ReadBackError::Source(e.to_string()));
            (source.into_inner(), found)
        }
        ClientLocation::File {
            logical_partition,
            path,
        } => {
            let finder = match logical_partition {
                None => Finder::whole_image(),
                Some(logical) => Finder::in_logical_partition(logical, metadata_slot),
            };
            let finder = finder.with_cache(CacheConfig::PHONE);
            let (source, result) = finder.hash_file(source, path, MAX_CLIENT_SIZE);
            let found = match result {
                Ok(file) => Ok(Found {
                    sha256: Some(file.sha256),
                    method: wanted.verify,
                    bytes_read: file.bytes_read,
                    logical_partition: file.logical_partition,
                    build: BuildRead::NotRead,
                }),
                // No client at that path: a missing client, not a station error.
                Err(e) if e.is_absent_file() => Ok(Found {
                    sha256: None,
                    method: wanted.verify,
                    bytes_read: 0,
                    logical_partition: None,
                    build: BuildRead::NotRead,
                }),
                Err(FindError::Source(e)) => Err(ReadBackError::Source(e.to_string())),
                Err(e) => Err(ReadBackError::Verdict(Failure::VerifyMismatch {
                    unit: attempt.unit(),
                    partition: partition.to_string(),
                    what: unreadable_layer(&e, logical_partition.as_deref()),
                    expected: format!(
                        "the flashed {} image's filesystem",
                        attempt.context.batch.region()
                    ),
                    found: format!("unreadable ({e})"),
                })),
            };
            match (found, &attempt.context.batch.build_prop) {
                (Ok(found), Some(prop)) if found.sha256.is_some() => {
                    let (source, build) = read_build_back(&finder, source, &prop.path);
                    let found = build.map(|(build, bytes)| Found {
                        build,
                        bytes_read: found.bytes_read + bytes,
                        ..found
                    });
                    (source, found)
                }
                (found, _) => (source, found),
            }
        }
    }
}

/// Reads the phone's `build.prop` at `path` (where pre-flight found it in the image) in the
/// filesystem `finder` opens, the same blocks-only way as the client: what it says, and the
/// bytes that crossed.
fn read_build_back<S: ReadAt + Send>(
    finder: &Finder,
    source: S,
    path: &str,
) -> (S, Result<(BuildRead, u64), ReadBackError>) {
    let (source, result) = read_build_prop(finder, source, &[path]);
    let read = match result {
        Ok(Some(prop)) => Ok((
            BuildRead::Read {
                path: prop.path,
                build_id: prop.build_id,
            },
            prop.bytes_read,
        )),
        Ok(None) => Ok((
            BuildRead::Absent {
                path: path.to_string(),
            },
            0,
        )),
        Err(FindError::Source(e)) => Err(ReadBackError::Source(e.to_string())),
        // The filesystem the client was just read from cannot give this file: the phone does
        // not hold the build's build.prop.
        Err(_) => Ok((
            BuildRead::Absent {
                path: path.to_string(),
            },
            0,
        )),
    };
    (source, read)
}

/// The verdict on the build id read back with the client: the manifest's, or a
/// `BUILD_ID_MISMATCH` naming both (a phone whose `build.prop` was not read is not judged here).
pub fn judge_build(
    attempt: &Attempt<'_>,
    partition: &str,
    logical: Option<&str>,
    build: &BuildRead,
) -> Option<Failure> {
    let batch = &attempt.context.batch;
    let expected = &batch.image_set.build_id;
    let (path, found) = match build {
        BuildRead::NotRead => return None,
        BuildRead::Read { build_id, .. } if build_id.as_deref() == Some(expected.as_str()) => {
            return None
        }
        BuildRead::Read { path, build_id } => (path, build_id.clone()),
        BuildRead::Absent { path } => (path, None),
    };
    let place = match logical {
        Some(logical) => format!("{partition}/{logical}"),
        None => partition.to_string(),
    };
    Some(Failure::BuildIdMismatch {
        unit: attempt.unit(),
        location: format!("{place} {path}"),
        expected: expected.clone(),
        found,
        work_order: batch.work_order.id.clone(),
    })
}

/// The LP metadata slot of the booting slot: `a` is 0, `b` is 1 (liblp's
/// `SlotNumberForSlotSuffix`); a phone without slots has one set of partitions, in slot 0.
pub(super) fn metadata_slot(current_slot: Option<&str>) -> u32 {
    match current_slot.map(str::as_bytes) {
        Some(&[letter]) if letter.is_ascii_lowercase() => u32::from(letter - b'a'),
        _ => 0,
    }
}

/// What could not be read, for the verdict: the LP metadata or the filesystem.
fn unreadable_layer(error: &FindError, logical_partition: Option<&str>) -> String {
    let within =
        logical_partition.map_or(String::new(), |name| format!("logical partition {name}'s "));
    match (error.layer(), error) {
        (crate::image::Layer::Super, _) => "LP metadata".into(),
        (_, FindError::NotAFilesystem { .. }) => format!("{within}ext4 or erofs filesystem"),
        (_, FindError::Corrupt { place, .. } | FindError::Unsupported { place, .. }) => {
            match place.fs {
                Some(fs) => format!("{within}{fs} filesystem"),
                None => format!("{within}filesystem"),
            }
        }
        _ => format!("{within}filesystem"),
    }
}

fn source_failure(
    attempt: &Attempt<'_>,
    step: &str,
    protocol: Option<FastbootError>,
    detail: String,
) -> Failure {
    match protocol {
        Some(e) => from_fastboot(attempt.unit(), step, &e),
        None => Failure::HostError {
            unit: attempt.unit(),
            step: step.to_string(),
            detail,
        },
    }
}

/// What the verify phase reads: `super/system_a /system/priv-app/…` for a client in the
/// logical partition of the booting slot (the operator sees which slot's `system` is checked),
/// `system_a /system/priv-app/…` otherwise.
pub fn phase(partition: &str, location: &ClientLocation, booting: Option<&str>) -> String {
    match (location, booting) {
        (
            ClientLocation::File {
                logical_partition: Some(logical),
                path,
            },
            Some(slot),
        ) => format!("{partition}/{logical}_{slot} {path}"),
        _ => format!("{partition} {location}"),
    }
}

/// Records in the unit's log where the region's client was found: `super/system_a` for a
/// client in a logical partition (the one the booting slot's LP metadata names), else the
/// partition.
pub fn log_pass(partition: &str, logical: Option<&str>) {
    let place = match logical {
        Some(logical) => format!("{partition}/{logical}"),
        None => partition.to_string(),
    };
    tracing::info!("the region's activation client verified in {place}");
}

/// The verdict on what was found on `partition` (in logical partition `logical` of it, when
/// the client lives in `super`): the region's client, another region's, or none of them.
pub fn judge(
    attempt: &Attempt<'_>,
    partition: &str,
    logical: Option<&str>,
    found: Option<Sha256Digest>,
) -> Option<Failure> {
    let batch = &attempt.context.batch;
    let wanted = &batch.image_set.activation_client;
    if found == Some(wanted.sha256) {
        return None;
    }
    // `super/system_b /system/priv-app/…`: the logical partition the phone boots, by its name.
    let (partition, location) = match (logical, &wanted.location) {
        (Some(logical), ClientLocation::File { path, .. }) => {
            (format!("{partition}/{logical}"), path.clone())
        }
        _ => (partition.to_string(), wanted.location.to_string()),
    };
    let Some(found) = found else {
        return Some(Failure::ActivationClientMissing {
            unit: attempt.unit(),
            partition,
            location,
            expected: wanted.sha256,
            work_order: batch.work_order.id.clone(),
            needed_region: batch.region().clone(),
        });
    };
    Some(match batch.product.region_with_client(&found).cloned() {
        Some(found_region) => Failure::ActivationClientWrongRegion {
            unit: attempt.unit(),
            partition,
            location,
            found_region,
            work_order: batch.work_order.id.clone(),
            needed_region: batch.region().clone(),
        },
        None => Failure::ActivationClientUnknown {
            unit: attempt.unit(),
            partition,
            location,
            found,
            expected: wanted.sha256,
            work_order: batch.work_order.id.clone(),
            needed_region: batch.region().clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_booting_slot_picks_its_metadata_slot() {
        assert_eq!(metadata_slot(Some("a")), 0);
        assert_eq!(metadata_slot(Some("b")), 1);
        assert_eq!(metadata_slot(None), 0);
        assert_eq!(metadata_slot(Some("weird")), 0);
    }
}

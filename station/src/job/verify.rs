//! Verification of the activation client on the phone: read back only what is needed (ext4
//! metadata and the client's blocks through fastboot `fetch:`) or ask for a device digest, and
//! compare with the region's allow-listed SHA-256.

use std::io;

use protocols::fastboot::{Fastboot, FastbootError};
use protocols::transport::Transport;

use crate::config::{ClientLocation, VerifyMethod};
use crate::digest::Sha256Digest;
use crate::ext4::{hash_file_in_ext4, Ext4FileError};
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
    match (&wanted.location, wanted.verify) {
        (ClientLocation::RawRange { offset, length }, VerifyMethod::DeviceDigest) => {
            let mut client = client;
            let found = client
                .oem_sha256(partition, Some((*offset, *length)))
                .map(|digest| Found {
                    sha256: Some(Sha256Digest(digest)),
                    method: VerifyMethod::DeviceDigest,
                    bytes_read: 0,
                })
                .map_err(|e| from_fastboot(attempt.unit(), &step, &e));
            (client, found)
        }
        (ClientLocation::RawRange { offset, length }, VerifyMethod::HostReadback) => {
            let mut source = CountingReader::new(FetchSource {
                client,
                partition: partition.to_string(),
                last_error: None,
            });
            let digest = hash_range(&mut source, *offset, *length);
            let bytes_read = source.bytes_read();
            let mut source = source.into_inner();
            let found = match digest {
                Ok(sha256) => Ok(Found {
                    sha256: Some(sha256),
                    method: VerifyMethod::HostReadback,
                    bytes_read,
                }),
                Err(e) => Err(source_failure(
                    attempt,
                    &step,
                    source.last_error.take(),
                    e.to_string(),
                )),
            };
            (source.client, found)
        }
        // A file inside ext4 has no fixed byte range a device digest could cover, so it is always
        // read back: only the blocks ext4 needs.
        (ClientLocation::Ext4File { path }, _) => {
            let source = FetchSource {
                client,
                partition: partition.to_string(),
                last_error: None,
            };
            let (mut source, digest) = hash_file_in_ext4(source, path, MAX_CLIENT_SIZE);
            let found = match digest {
                Ok(d) => Ok(Found {
                    sha256: Some(d.sha256),
                    method: VerifyMethod::HostReadback,
                    bytes_read: d.bytes_read,
                }),
                // No client at that path: an unknown (absent) client, not a station error.
                Err(Ext4FileError::NotFound { .. }) | Err(Ext4FileError::NotAFile { .. }) => {
                    Ok(Found {
                        sha256: None,
                        method: VerifyMethod::HostReadback,
                        bytes_read: 0,
                    })
                }
                Err(Ext4FileError::Source(e)) => Err(source_failure(
                    attempt,
                    &step,
                    source.last_error.take(),
                    e.to_string(),
                )),
                Err(e) => Err(Failure::VerifyMismatch {
                    unit: attempt.unit(),
                    partition: partition.to_string(),
                    what: "ext4 filesystem".into(),
                    expected: format!(
                        "the flashed {} image's filesystem",
                        attempt.context.batch.region()
                    ),
                    found: format!("unreadable ({e})"),
                }),
            };
            (source.client, found)
        }
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

/// The verdict on what was found: the region's client, another region's, or none of them.
pub fn judge(
    attempt: &Attempt<'_>,
    partition: &str,
    found: Option<Sha256Digest>,
) -> Option<Failure> {
    let batch = &attempt.context.batch;
    let wanted = &batch.image_set.activation_client;
    if found == Some(wanted.sha256) {
        return None;
    }
    let location = wanted.location.to_string();
    let other_region = found.and_then(|d| batch.product.region_with_client(&d).cloned());
    Some(match other_region {
        Some(found_region) => Failure::ActivationClientWrongRegion {
            unit: attempt.unit(),
            partition: partition.to_string(),
            location,
            found_region,
            work_order: batch.work_order.id.clone(),
            needed_region: batch.region().clone(),
        },
        None => Failure::ActivationClientUnknown {
            unit: attempt.unit(),
            partition: partition.to_string(),
            location,
            found,
            expected: wanted.sha256,
            work_order: batch.work_order.id.clone(),
            needed_region: batch.region().clone(),
        },
    })
}

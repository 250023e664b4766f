//! A unit proof: the station's signed statement that one unit passed — which unit (serials and
//! code), under which work order, region and build, with which activation client read back from
//! it, from which manifest, at which station and time, and where the verdict sits in the
//! journal's chain. The statement is JSON; its signature is a minisign signature (Ed25519) in a
//! detached `.minisig`, so an auditor checks it with `minisign -V` or `flashgate unit verify`,
//! with nothing from the station but its public key.

use std::io::Cursor;

use minisign::{PublicKey, SignatureBox};
use serde::{Deserialize, Serialize};

use super::station_key::{StationKeyError, StationSigner};
use crate::journal::{AttemptRow, ChainEntry, ImageSent};

/// The statement's format, its first field.
pub const PROOF_FORMAT: &str = "flashgate.unit-proof.v1";
/// Version 1 and the production line the unit was made on (`line`). A proof of a unit with no
/// line recorded stays version 1, byte for byte what earlier flashgate versions wrote and read.
pub const PROOF_FORMAT_WITH_LINE: &str = "flashgate.unit-proof.v2";

/// What the station states about a unit that passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitProof {
    pub format: String,
    pub result: String,
    pub unit_serial: String,
    /// The Qualcomm chip serial of a unit identified in EDL.
    pub chip_serial: Option<String>,
    /// The unit's IMEI or label code, and where it was read (`getvar:imei`).
    pub unit_code: Option<String>,
    pub unit_code_source: Option<String>,
    pub work_order: String,
    pub product: String,
    pub region: String,
    /// The release's build id (the manifest's, checked against its images at pre-flight).
    pub build_id: String,
    /// The build id read back from the unit with its client (`ro.build.display.id`); none when
    /// the product's client is not read from a filesystem.
    pub build_id_found: Option<String>,
    /// The pinned key whose signature made the manifest trusted; none in engineering mode.
    pub manifest_signed_by: Option<String>,
    /// The station did not enforce manifest signatures: not a unit to ship.
    pub engineering_mode: bool,
    /// SHA-256 of the activation client as read back from the unit.
    pub activation_client_sha256: String,
    pub verify_method: Option<String>,
    pub manifest_sha256: String,
    pub images_sent: Vec<ImageSent>,
    pub station_id: String,
    /// The production line the unit was made on (format v2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    pub operator_id: Option<String>,
    /// When the verdict was reached, RFC 3339 UTC.
    pub finished_at: String,
    pub attempt_id: i64,
    pub chain_seq: i64,
    /// The verdict's link in the station's journal chain.
    pub chain_link: String,
    pub tool_version: String,
    /// Signed with flashgate's published demo key: proves nothing.
    pub demo_key: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("the signature file is not a minisign signature: {0}")]
    SignatureFile(String),
    #[error(
        "BAD SIGNATURE: {0} (the statement or its signature was changed, or another key signed it)"
    )]
    BadSignature(String),
    #[error("the signature is good but the statement is not a flashgate unit proof: {0}")]
    Statement(String),
    #[error(transparent)]
    Key(#[from] StationKeyError),
}

impl UnitProof {
    /// The statement for a finished row at `entry` in the chain: only a PASS with its serial
    /// and the client read back has one.
    pub fn of(row: &AttemptRow, entry: &ChainEntry, demo_key: bool) -> Option<Self> {
        if row.result != "PASS" {
            return None;
        }
        Some(Self {
            format: if row.line.is_some() {
                PROOF_FORMAT_WITH_LINE
            } else {
                PROOF_FORMAT
            }
            .into(),
            result: row.result.clone(),
            unit_serial: row.unit_serial.clone()?,
            chip_serial: row.chip_serial.clone(),
            unit_code: row.unit_code.clone(),
            unit_code_source: row.unit_code_source.clone(),
            work_order: row.work_order.clone(),
            product: row.product.clone(),
            region: row.region.clone(),
            build_id: row.build_id.clone(),
            build_id_found: row.build_id_found.clone(),
            manifest_signed_by: row.manifest_signed_by.clone(),
            engineering_mode: row.engineering_mode,
            activation_client_sha256: row.activation_sha256_found.clone()?,
            verify_method: row.verify_method.clone(),
            manifest_sha256: row.manifest_sha256.clone(),
            images_sent: row.images_sent.clone(),
            station_id: row.station_id.clone(),
            line: row.line.clone(),
            operator_id: row.operator_id.clone(),
            finished_at: row.finished_at?.to_string(),
            attempt_id: row.id,
            chain_seq: entry.seq,
            chain_link: entry.link.to_hex(),
            tool_version: row.tool_version.clone(),
            demo_key,
        })
    }

    /// The bytes signed: pretty JSON and a final newline, as `unit proof --out` writes them.
    pub fn statement(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The minisign trusted comment: one line, signed with the statement, shown by
    /// `minisign -V`.
    pub fn trusted_comment(&self) -> String {
        let line = format!(
            "flashgate unit proof: {} {} work order {} region {} client {} station {} attempt {}{}",
            self.result,
            self.unit_serial,
            self.work_order,
            self.region,
            self.activation_client_sha256,
            self.station_id,
            self.attempt_id,
            if self.demo_key { " (DEMO KEY)" } else { "" }
        );
        line.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    }

    /// The statement and its signature (the text of a `.minisig` file).
    pub fn sign(&self, signer: &StationSigner) -> Result<(String, String), StationKeyError> {
        let statement = self.statement();
        let signature = signer.sign(statement.as_bytes(), &self.trusted_comment())?;
        Ok((statement, signature))
    }
}

/// A proof whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    pub proof: UnitProof,
    pub trusted_comment: String,
}

/// Checks `signature` (a `.minisig` file's text) over `statement` with `key`, then reads the
/// statement.
pub fn verify(
    statement: &[u8],
    signature: &str,
    key: &PublicKey,
) -> Result<VerifiedProof, ProofError> {
    let signature = SignatureBox::from_string(signature)
        .map_err(|e| ProofError::SignatureFile(e.to_string()))?;
    minisign::verify(key, &signature, Cursor::new(statement), true, false, false)
        .map_err(|e| ProofError::BadSignature(e.to_string()))?;
    let trusted_comment = signature
        .trusted_comment()
        .map_err(|e| ProofError::SignatureFile(e.to_string()))?;
    let proof: UnitProof =
        serde_json::from_slice(statement).map_err(|e| ProofError::Statement(e.to_string()))?;
    let known = match proof.format.as_str() {
        PROOF_FORMAT => proof.line.is_none(),
        PROOF_FORMAT_WITH_LINE => proof.line.is_some(),
        _ => false,
    };
    if !known {
        return Err(ProofError::Statement(format!(
            "format `{}`{}, expected `{PROOF_FORMAT}` (no line) or `{PROOF_FORMAT_WITH_LINE}` \
             (with its line)",
            proof.format,
            if proof.line.is_some() {
                " with a line"
            } else {
                " without a line"
            }
        )));
    }
    Ok(VerifiedProof {
        proof,
        trusted_comment,
    })
}

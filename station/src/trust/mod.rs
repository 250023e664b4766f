//! Trust: what makes the station believe a release, and what lets someone who was not at the
//! station check what it did.
//!
//! - [`manifest_signature`]: a product manifest is signed by the release (minisign: Ed25519, a
//!   detached `<manifest>.minisig`); the station pins the public keys it trusts.
//! - [`chain`]: the journal's hash chain (its bytes).
//! - [`unit_proof`], [`station_key`]: the station's signed statement for each unit that passed.

pub mod chain;
pub mod manifest_signature;
pub mod station_key;
pub mod unit_proof;

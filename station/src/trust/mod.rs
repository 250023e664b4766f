//! Trust: what makes the station believe a release, and what it records so others can check it.
//!
//! - [`manifest_signature`]: a product manifest is signed by the release (minisign: Ed25519, a
//!   detached `<manifest>.minisig`); the station pins the public keys it trusts.

pub mod manifest_signature;

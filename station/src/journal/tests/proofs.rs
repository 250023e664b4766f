//! Unit proofs written with the verdict: a PASS of a station with a key carries one, checkable
//! with the public key alone; nothing else does.

use std::sync::Arc;

use super::*;
use crate::trust::station_key::{generate, StationSigner};
use crate::trust::unit_proof::{verify, ProofError, PROOF_FORMAT, PROOF_FORMAT_WITH_LINE};

fn signing_journal(dir: &tempfile::TempDir) -> (Journal, minisign::PublicKey) {
    let key = dir.path().join("station.key");
    let public = generate(&key).unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    journal.sign_passes_with(Arc::new(StationSigner::load(&key, &public).unwrap()));
    (journal, public)
}

#[test]
fn a_pass_carries_a_signed_proof_of_what_the_unit_got() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, public) = signing_journal(&dir);
    let passed = run(&mut journal, 1, "WO-1", "SER1", pass());
    let failed = run(&mut journal, 2, "WO-1", "SER2", fail(2, "SER2"));
    assert_eq!(journal.unit_proof(failed.id.0).unwrap(), None);
    let stored = journal.unit_proof(passed.id.0).unwrap().unwrap();
    assert_eq!(journal.unit_proofs("SER1").unwrap(), vec![stored.clone()]);

    let verified = verify(stored.statement.as_bytes(), &stored.signature, &public).unwrap();
    let proof = verified.proof;
    let row = journal.attempt(passed.id).unwrap().unwrap();
    assert_eq!(proof.format, PROOF_FORMAT);
    assert_eq!(proof.unit_serial, "SER1");
    assert_eq!(proof.work_order, "WO-1");
    assert_eq!(proof.region, "00EEA");
    assert_eq!(proof.build_id, "FGDEMO.00EEA.1");
    assert_eq!(
        proof.activation_client_sha256,
        Sha256Digest::of_bytes(b"client-00EEA").to_hex()
    );
    assert_eq!(proof.manifest_sha256, row.manifest_sha256);
    assert_eq!((proof.attempt_id, proof.chain_seq), (passed.id.0, 1));
    assert!(!proof.demo_key);
    let link: String = journal
        .connection()
        .query_row(
            "SELECT chain_link FROM attempts WHERE id = ?1",
            [passed.id.0],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(proof.chain_link, link);
    assert!(
        verified
            .trusted_comment
            .starts_with("flashgate unit proof: PASS SER1 work order WO-1"),
        "{}",
        verified.trusted_comment
    );

    // One byte changed anywhere in the statement: refused.
    let mut edited = stored.statement.clone().into_bytes();
    let at = stored.statement.find("00EEA").unwrap();
    edited[at + 4] = b'B';
    assert!(matches!(
        verify(&edited, &stored.signature, &public),
        Err(ProofError::BadSignature(_))
    ));
    // Another station's key: refused.
    let other = tempfile::tempdir().unwrap();
    let other_key = generate(&other.path().join("k")).unwrap();
    assert!(verify(stored.statement.as_bytes(), &stored.signature, &other_key).is_err());
}

#[test]
fn a_journal_without_a_key_records_passes_without_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    let passed = run(&mut journal, 1, "WO-1", "SER1", pass());
    assert_eq!(journal.unit_proof(passed.id.0).unwrap(), None);
}

#[test]
fn journal_verify_names_the_column_a_proof_contradicts_and_a_row_deleted_under_its_proof() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, public) = signing_journal(&dir);
    let first = run(&mut journal, 1, "WO-1", "SER1", pass());
    let second = run(&mut journal, 2, "WO-1", "SER2", pass());
    let report = journal.verify_chain_with_key(Some(&public)).unwrap();
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!((report.proofs, report.passes_without_proof), (2, 0));

    journal
        .connection()
        .execute_batch(&format!(
            "UPDATE attempts SET work_order = 'WO-9' WHERE id = {};
             PRAGMA foreign_keys = OFF; DELETE FROM attempts WHERE id = {};",
            first.id.0, second.id.0
        ))
        .unwrap();
    let report = journal.verify_chain_with_key(Some(&public)).unwrap();
    let found: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("was edited; work_order is WO-9 but its signed unit proof says WO-1"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with(&format!(
            "attempt {}: has a signed unit proof (PASS SER2)",
            second.id.0
        )),
        "{found:?}"
    );
    // A proof whose signature another key made is named too.
    let other = tempfile::tempdir().unwrap();
    let other_key = generate(&other.path().join("k")).unwrap();
    let report = journal.verify_chain_with_key(Some(&other_key)).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("its unit proof: BAD SIGNATURE")),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_proof_names_the_line_as_version_2_and_stays_version_1_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, public) = signing_journal(&dir);
    let unlined = run(&mut journal, 1, "WO-1", "SER1", pass());
    let id = journal
        .begin(&AttemptStart {
            line: Some("line3".into()),
            ..start(2, "WO-1")
        })
        .unwrap();
    journal
        .identified(id, "SER2", Mode::Fastboot, at(2))
        .unwrap();
    journal.finish(id, &pass()).unwrap();
    let proof_of = |attempt: i64| {
        let stored = journal.unit_proof(attempt).unwrap().unwrap();
        (
            verify(stored.statement.as_bytes(), &stored.signature, &public)
                .unwrap()
                .proof,
            stored,
        )
    };
    let (plain, stored) = proof_of(unlined.id.0);
    assert_eq!((plain.format.as_str(), plain.line), (PROOF_FORMAT, None));
    assert!(
        !stored.statement.contains("\"line\""),
        "{}",
        stored.statement
    );
    let (lined, _) = proof_of(id.0);
    assert_eq!(lined.format, PROOF_FORMAT_WITH_LINE);
    assert_eq!(lined.line.as_deref(), Some("line3"));
    // The row moved to another line by hand contradicts its proof.
    journal
        .connection()
        .execute_batch(&format!(
            "UPDATE attempts SET line = 'line4' WHERE id = {}",
            id.0
        ))
        .unwrap();
    let report = journal.verify_chain_with_key(Some(&public)).unwrap();
    assert!(
        report.problems.iter().any(|p| p
            .what
            .contains("line is line4 but its signed unit proof says line3")),
        "{:?}",
        report.problems
    );
}

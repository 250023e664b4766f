//! The signed unit proofs the journal keeps beside the PASS rows they state.

use rusqlite::params;

use super::{Journal, JournalError};

/// One proof as stored: the exact bytes signed and the `.minisig` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProof {
    pub attempt_id: i64,
    pub statement: String,
    pub signature: String,
}

impl Journal {
    /// The proofs of the unit known as `name` (serial, chip serial or code, as `history` finds
    /// it), oldest first.
    pub fn unit_proofs(&self, name: &str) -> Result<Vec<StoredProof>, JournalError> {
        let mut proofs = Vec::new();
        for row in self.history(name)? {
            proofs.extend(self.unit_proof(row.id)?);
        }
        Ok(proofs)
    }

    /// The proof of attempt `id`, if it has one.
    pub fn unit_proof(&self, id: i64) -> Result<Option<StoredProof>, JournalError> {
        let mut statement = self.connection().prepare(
            "SELECT attempt_id, statement, signature FROM unit_proofs WHERE attempt_id = ?1",
        )?;
        let mut rows = statement.query_map(params![id], |row| {
            Ok(StoredProof {
                attempt_id: row.get(0)?,
                statement: row.get(1)?,
                signature: row.get(2)?,
            })
        })?;
        Ok(rows.next().transpose()?)
    }
}

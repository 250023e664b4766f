//! The flashgate station: configuration, batch orchestration, verification, journal.

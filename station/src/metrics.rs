//! Figures a line benchmark reads from inside the station (`flashgate bench line`): when each
//! verdict's journal commit ended and how long it took, and how much CPU the simulated phones'
//! threads spent, so the station's own share can be told apart. Nothing is kept unless a
//! benchmark turned recording on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::events::SlotNumber;

static RECORDING: AtomicBool = AtomicBool::new(false);
static COMMITS: Mutex<Vec<CommitTiming>> = Mutex::new(Vec::new());
static PHONE_CPU_NS: AtomicU64 = AtomicU64::new(0);

/// One verdict's journal commit.
#[derive(Debug, Clone, Copy)]
pub struct CommitTiming {
    pub slot: SlotNumber,
    /// From the start of the write to the row on disk.
    pub took: Duration,
    /// When it was on disk.
    pub done: Instant,
}

/// Start (or stop) keeping figures; starting clears earlier ones.
pub fn set_recording(on: bool) {
    if on {
        COMMITS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        PHONE_CPU_NS.store(0, Ordering::Relaxed);
    }
    RECORDING.store(on, Ordering::Relaxed);
}

pub fn recording() -> bool {
    RECORDING.load(Ordering::Relaxed)
}

pub(crate) fn record_commit(slot: SlotNumber, took: Duration) {
    if recording() {
        COMMITS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(CommitTiming {
                slot,
                took,
                done: Instant::now(),
            });
    }
}

/// The commits recorded since recording started.
pub fn commits() -> Vec<CommitTiming> {
    COMMITS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Add the calling thread's CPU time so far to the phones' (called as a phone thread ends).
pub(crate) fn add_phone_thread_cpu() {
    if recording() {
        PHONE_CPU_NS.fetch_add(thread_cpu_ns(), Ordering::Relaxed);
    }
}

/// CPU the simulated phones' finished threads spent since recording started.
pub fn phone_cpu() -> Duration {
    Duration::from_nanos(PHONE_CPU_NS.load(Ordering::Relaxed))
}

/// CPU time (user + system) of the calling thread.
pub fn thread_cpu_ns() -> u64 {
    cpu_clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time (user + system) of the whole process.
pub fn process_cpu_ns() -> u64 {
    cpu_clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_clocks_advance_with_work() {
        let before = thread_cpu_ns();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_ns() > before);
        assert!(process_cpu_ns() >= thread_cpu_ns());
    }
}

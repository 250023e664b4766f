//! The bridge from our blocking [`ReadAt`] sources to erofs-rs's asynchronous reader, and the
//! read budget that bounds what a hostile image can make us read from a phone.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use erofs_rs::backend::AsyncImage;

use crate::read_at::{CountingReader, ReadAt};

/// How much a step may read from the source in total: bytes and read requests. Both matter on
/// a phone link, where every request is a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub reads: u64,
}

impl Budget {
    fn plus(self, more: Budget) -> Budget {
        Budget {
            bytes: self.bytes.saturating_add(more.bytes),
            reads: self.reads.saturating_add(more.reads),
        }
    }
}

/// Why the source stopped answering erofs-rs. Recorded here because erofs-rs only passes on a
/// copy, and its own error would hide whether the device failed or the image lied.
#[derive(Debug)]
pub enum SourceFailure {
    Io(io::Error),
    OverBudget(Budget),
    /// Metadata pointed past the filesystem's end as its superblock gives it: a lie of the
    /// image, not a failure of the source (and never a read of a neighbouring partition).
    OutsideFilesystem {
        offset: u64,
        len: usize,
        end: u64,
    },
}

/// A source with a read budget that records the first failure.
#[derive(Debug)]
pub struct Metered<S> {
    source: CountingReader<S>,
    budget: Budget,
    /// Where the filesystem ends, once its superblock has been read.
    end: Option<u64>,
    failure: Option<SourceFailure>,
}

impl<S: ReadAt> Metered<S> {
    pub fn new(source: S, budget: Budget) -> Self {
        Self {
            source: CountingReader::new(source),
            budget,
            end: None,
            failure: None,
        }
    }

    /// Refuses, from now on, reads that reach past `end`.
    pub fn set_end(&mut self, end: u64) {
        self.end = Some(end);
    }

    /// Widens the budget once a step has learnt, within the old one, what it needs to read
    /// next (the size of the file it is about to stream).
    pub fn raise_budget(&mut self, more: Budget) {
        self.budget = self.budget.plus(more);
    }

    /// Fills `buf` from `offset` unless that would overrun the budget; refuses every read after
    /// a failure, so a caller that swallowed one cannot go on.
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.failure.is_some() {
            return Err(io::Error::other("the source already failed"));
        }
        let bytes = self.source.bytes_read().saturating_add(buf.len() as u64);
        if bytes > self.budget.bytes || self.source.reads() >= self.budget.reads {
            self.failure = Some(SourceFailure::OverBudget(self.budget));
            return Err(io::Error::other("read budget exhausted"));
        }
        if let Some(end) = self.end {
            if offset
                .checked_add(buf.len() as u64)
                .is_none_or(|read_end| read_end > end)
            {
                self.failure = Some(SourceFailure::OutsideFilesystem {
                    offset,
                    len: buf.len(),
                    end,
                });
                return Err(io::Error::other("read past the filesystem's end"));
            }
        }
        self.source.read_exact_at(offset, buf).map_err(|e| {
            let copy = io::Error::new(e.kind(), e.to_string());
            self.failure = Some(SourceFailure::Io(e));
            copy
        })
    }

    /// The source, what was read from it, and the failure that stopped it, if any.
    pub fn finish(self) -> (S, Counts, Option<SourceFailure>) {
        let counts = Counts {
            bytes: self.source.bytes_read(),
            reads: self.source.reads(),
        };
        (self.source.into_inner(), counts, self.failure)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub bytes: u64,
    pub reads: u64,
}

/// Locks a metered source; a poisoned lock only means an earlier reader panicked inside the
/// source itself, and the counters are still right.
pub fn lock<S>(metered: &Mutex<Metered<S>>) -> std::sync::MutexGuard<'_, Metered<S>> {
    metered.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What erofs-rs reads through. Borrowing the mutex (rather than sharing it) hands the source
/// back whole once the filesystem value is dropped.
pub struct ErofsSource<'a, S>(pub &'a Mutex<Metered<S>>);

impl<S: ReadAt + Send> AsyncImage for ErofsSource<'_, S> {
    async fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> erofs_rs::Result<()> {
        lock(self.0).read(offset, buf).map_err(erofs_rs::Error::Io)
    }
}

/// Runs one erofs-rs operation to its end. Every read completes inside its first poll (the
/// source is blocking), so a future that is still pending has nothing left to wait for:
/// that is reported rather than spun on.
pub fn complete<T>(future: impl Future<Output = erofs_rs::Result<T>>) -> erofs_rs::Result<T> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => Err(erofs_rs::Error::Io(io::Error::new(
            io::ErrorKind::WouldBlock,
            "the erofs reader waited on a source that never blocks",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(bytes: u64, reads: u64) -> Budget {
        Budget { bytes, reads }
    }

    #[test]
    fn reads_within_the_budget_are_counted() {
        let mut metered = Metered::new((0u8..100).collect::<Vec<u8>>(), budget(8, 2));
        let mut buf = [0u8; 4];
        metered.read(10, &mut buf).unwrap();
        assert_eq!(buf, [10, 11, 12, 13]);
        metered.read(20, &mut buf).unwrap();
        let (_, counts, failure) = metered.finish();
        assert_eq!(counts, Counts { bytes: 8, reads: 2 });
        assert!(failure.is_none());
    }

    #[test]
    fn a_read_past_the_byte_budget_is_refused_before_it_is_made() {
        let mut metered = Metered::new(vec![0u8; 100], budget(6, 10));
        let mut buf = [0u8; 4];
        metered.read(0, &mut buf).unwrap();
        assert!(metered.read(4, &mut buf).is_err());
        // Every later read is refused too, even one that would fit.
        assert!(metered.read(0, &mut [0u8; 1]).is_err());
        let (_, counts, failure) = metered.finish();
        assert_eq!(counts.bytes, 4);
        assert!(matches!(failure, Some(SourceFailure::OverBudget(b)) if b == budget(6, 10)));
    }

    #[test]
    fn the_read_count_is_budgeted_too_and_can_be_raised() {
        let mut metered = Metered::new(vec![0u8; 100], budget(1000, 1));
        metered.read(0, &mut [0u8; 1]).unwrap();
        metered.raise_budget(budget(0, 1));
        metered.read(0, &mut [0u8; 1]).unwrap();
        assert!(metered.read(0, &mut [0u8; 1]).is_err());
        let (_, _, failure) = metered.finish();
        assert!(matches!(failure, Some(SourceFailure::OverBudget(b)) if b == budget(1000, 2)));
    }

    #[test]
    fn reads_past_the_filesystem_are_refused_once_its_end_is_known() {
        let mut metered = Metered::new(vec![0u8; 100], budget(1000, 1000));
        metered.read(90, &mut [0u8; 10]).unwrap();
        metered.set_end(50);
        metered.read(46, &mut [0u8; 4]).unwrap();
        assert!(metered.read(47, &mut [0u8; 4]).is_err());
        let (_, counts, failure) = metered.finish();
        assert_eq!(counts.reads, 2);
        assert!(matches!(
            failure,
            Some(SourceFailure::OutsideFilesystem {
                offset: 47,
                len: 4,
                end: 50
            })
        ));
        let mut metered = Metered::new(vec![0u8; 100], budget(1000, 1000));
        metered.set_end(50);
        assert!(metered.read(u64::MAX, &mut [0u8; 4]).is_err());
    }

    #[test]
    fn the_source_error_itself_is_kept() {
        let mut metered = Metered::new(vec![0u8; 10], budget(1000, 1000));
        let copy = metered.read(8, &mut [0u8; 4]).unwrap_err();
        assert_eq!(copy.kind(), io::ErrorKind::UnexpectedEof);
        let (source, counts, failure) = metered.finish();
        assert_eq!(source.len(), 10);
        assert_eq!(counts.reads, 0);
        match failure {
            Some(SourceFailure::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("expected the io error, got {other:?}"),
        }
    }

    #[test]
    fn the_async_image_reads_through_the_meter() {
        let metered = Mutex::new(Metered::new(vec![5u8; 10], budget(1000, 1000)));
        let image = ErofsSource(&metered);
        let mut buf = [0u8; 3];
        complete(image.read_exact_at(&mut buf, 7)).unwrap();
        assert_eq!(buf, [5, 5, 5]);
        assert!(complete(image.read_exact_at(&mut buf, 8)).is_err());
        let (_, counts, failure) = metered.into_inner().unwrap().finish();
        assert_eq!(counts.bytes, 3);
        assert!(matches!(failure, Some(SourceFailure::Io(_))));
    }

    #[test]
    fn a_pending_future_is_an_error_not_a_hang() {
        let result: erofs_rs::Result<()> = complete(std::future::pending());
        assert!(
            matches!(result, Err(erofs_rs::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock)
        );
    }
}

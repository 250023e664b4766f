//! One entry point that drives every read path over arbitrary bytes, for fuzz targets and the
//! mutation test below.

use super::{
    backup_metadata_offset, primary_metadata_offset, read_geometry, read_image, read_metadata,
    read_metadata_copy, read_super_empty, ImageLayout, Metadata, MetadataBuilder, ReadAt, Which,
};

/// Slots tried per image: a hostile geometry may declare billions.
const MAX_SLOTS_TRIED: u32 = 4;

/// Treat `bytes` as a super partition and as a `super_empty.img`, and try every read path on
/// them: geometry (both copies), each slot's copies, lookups, extent mapping, partition reads,
/// re-encoding and the builder. Any panic, or metadata that does not survive re-encoding, is
/// a bug.
pub fn exercise_image(bytes: &[u8]) {
    let mut read_at = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| bytes.get(start..start.checked_add(buf.len())?))
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "past end"))?;
        buf.copy_from_slice(src);
        Ok(())
    };
    let _ = ImageLayout::detect(&mut read_at);
    if let Ok(geometry) = read_geometry(&mut read_at) {
        for slot in 0..geometry.metadata_slot_count.min(MAX_SLOTS_TRIED) {
            for (offset, which) in [
                (primary_metadata_offset(&geometry, slot), Which::Primary),
                (backup_metadata_offset(&geometry, slot), Which::Backup),
            ] {
                if let Ok(m) = read_metadata_copy(&mut read_at, &geometry, offset, which) {
                    check_metadata(&m, &mut read_at);
                }
            }
            if let Ok(m) = read_metadata(&mut read_at, &geometry, slot) {
                check_metadata(&m, &mut read_at);
            }
        }
        let _ = read_metadata(&mut read_at, &geometry, geometry.metadata_slot_count);
    }
    if let Ok(m) = read_super_empty(&mut read_at) {
        check_metadata(&m, &mut read_at);
    }
    let _ = read_image(&mut read_at, 1);
}

fn check_metadata<R: ReadAt + ?Sized>(m: &Metadata, read_at: &mut R) {
    let encoded = m.encode().expect("metadata that was read must encode");
    let back = Metadata::parse(&m.geometry, &encoded, Which::Only).expect("and read back");
    assert_eq!(&back, m, "re-encoded metadata differs");
    for summary in m.summaries() {
        let p = m
            .partition(&summary.name)
            .expect("listed partitions are found");
        assert!(m.partition_for_slot(&summary.name, 1).is_some());
        let size = summary.size;
        for (offset, len) in [(0, size.min(4096)), (size / 2, size.min(3)), (size, 0)] {
            let pieces = m.map_range(p, offset, len).expect("a range inside maps");
            assert_eq!(pieces.iter().map(|r| r.len()).sum::<u64>(), len);
            let mut buf = vec![0u8; len as usize];
            let _ = m.read_partition_at(p, read_at, offset, &mut buf);
        }
        assert!(m.map_range(p, size, 1).is_err());
        assert!(m.map_range(p, u64::MAX, 2).is_err());
    }
    if let Ok(mut builder) = MetadataBuilder::from_metadata(m) {
        if let Some(name) = builder.partition_names().first().cloned() {
            let size = builder.partition_size(&name).unwrap_or(0);
            let _ = builder.resize_partition(&name, size.saturating_add(8192));
            let _ = builder.resize_partition(&name, size / 2);
            let _ = builder.export();
            let _ = builder.remove_partition(&name);
        }
        let _ = builder.export();
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{reseal_geometry, reseal_metadata, small_super_image};
    use super::*;

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn valid_image_goes_through_every_path() {
        exercise_image(&small_super_image());
        exercise_image(&[]);
        exercise_image(&[0u8; 20_000]);
    }

    /// Byte mutations of the live metadata bytes (geometry structs and slot 0's copies); half
    /// of them re-sealed so the checksums pass and the semantic checks behind them are reached.
    #[test]
    fn thousands_of_mutations_never_panic() {
        let good = small_super_image();
        let blob_len = super::super::test_support::small_metadata().encoded_len() as usize;
        // Geometry copies at 4096 and 8192; 4 KiB slots: slot 0 at 12288, its backup at 20480.
        let targets = [(4096, 52), (8192, 52), (12288, blob_len), (20480, blob_len)];
        let mut rng = XorShift(0x5eed_1234_abcd_0001);
        for round in 0..3000u32 {
            let mut image = good.clone();
            for _ in 0..1 + rng.below(4) {
                let (start, len) = targets[[0, 1, 2, 2, 2, 2, 3][rng.below(7)]];
                let at = start + rng.below(len);
                match rng.below(4) {
                    0 => image[at] ^= 1 << rng.below(8),
                    1 => image[at] = 0xff,
                    2 => image[at] = 0,
                    _ => image[at] = image[at].wrapping_add(1),
                }
            }
            if round.is_multiple_of(2) {
                reseal_geometry(&mut image, 4096);
                reseal_metadata(&mut image, 12288);
                reseal_metadata(&mut image, 20480);
            }
            if round.is_multiple_of(7) {
                image.truncate(rng.below(image.len()));
            }
            exercise_image(&image);
        }
    }
}

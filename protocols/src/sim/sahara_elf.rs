//! What a simulated boot ROM needs to know about a programmer ELF to walk it over READ_DATA:
//! the header, the program header table and the segments' file ranges. Also a builder for small
//! but well-formed programmer ELFs for tests and demos.
//!
//! Everything here reads bytes a host sent, so every field is bounded before use and every
//! failure maps to the Sahara status a ROM would report.

use crate::sahara::status::Status;

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;

pub const ELF32_HEADER_LEN: u64 = 0x34;
pub const ELF64_HEADER_LEN: u64 = 0x40;
const ELF32_PHDR_LEN: u64 = 0x20;
const ELF64_PHDR_LEN: u64 = 0x38;

/// Boot ROMs accept a bounded number of program headers (UNSUPPORTED_NUM_PHDRS beyond).
pub const MAX_PHDRS: u64 = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfClass {
    Elf32,
    Elf64,
}

impl ElfClass {
    pub fn header_len(self) -> u64 {
        match self {
            ElfClass::Elf32 => ELF32_HEADER_LEN,
            ElfClass::Elf64 => ELF64_HEADER_LEN,
        }
    }

    fn phdr_len(self) -> u64 {
        match self {
            ElfClass::Elf32 => ELF32_PHDR_LEN,
            ElfClass::Elf64 => ELF64_PHDR_LEN,
        }
    }
}

/// The parts of the ELF header a ROM uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfHeader {
    pub class: ElfClass,
    pub phoff: u64,
    pub phnum: u64,
    pub shoff: u64,
    pub shnum: u64,
    pub shentsize: u64,
}

impl ElfHeader {
    /// The class from `e_ident`, enough to know how long the header is.
    pub fn class_of(ident: &[u8]) -> Result<ElfClass, Status> {
        if ident.get(..4) != Some(ELF_MAGIC.as_slice()) {
            return Err(Status::INVALID_ELF_HDR);
        }
        if ident.get(5) != Some(&ELFDATA2LSB) {
            return Err(Status::INVALID_ELF_HDR);
        }
        match ident.get(4) {
            Some(&ELFCLASS32) => Ok(ElfClass::Elf32),
            Some(&ELFCLASS64) => Ok(ElfClass::Elf64),
            _ => Err(Status::INVALID_ELF_HDR),
        }
    }

    /// Parse a whole header (`class.header_len()` bytes).
    pub fn parse(bytes: &[u8]) -> Result<ElfHeader, Status> {
        let class = Self::class_of(bytes)?;
        let bad = Status::INVALID_ELF_HDR;
        let (phoff, shoff, phentsize, phnum, shentsize, shnum) = match class {
            ElfClass::Elf32 => (
                u64::from(le32(bytes, 0x1c).ok_or(bad)?),
                u64::from(le32(bytes, 0x20).ok_or(bad)?),
                le16(bytes, 0x2a).ok_or(bad)?,
                le16(bytes, 0x2c).ok_or(bad)?,
                le16(bytes, 0x2e).ok_or(bad)?,
                le16(bytes, 0x30).ok_or(bad)?,
            ),
            ElfClass::Elf64 => (
                le64(bytes, 0x20).ok_or(bad)?,
                le64(bytes, 0x28).ok_or(bad)?,
                le16(bytes, 0x36).ok_or(bad)?,
                le16(bytes, 0x38).ok_or(bad)?,
                le16(bytes, 0x3a).ok_or(bad)?,
                le16(bytes, 0x3c).ok_or(bad)?,
            ),
        };
        if u64::from(phentsize) != class.phdr_len() {
            return Err(Status::INVALID_PHDR_SIZE);
        }
        if phnum == 0 || u64::from(phnum) > MAX_PHDRS {
            return Err(Status::UNSUPPORTED_NUM_PHDRS);
        }
        Ok(ElfHeader {
            class,
            phoff,
            phnum: u64::from(phnum),
            shoff,
            shnum: u64::from(shnum),
            shentsize: u64::from(shentsize),
        })
    }

    /// Bytes of the program header table.
    pub fn phdrs_len(&self) -> u64 {
        self.phnum * self.class.phdr_len()
    }

    /// File ranges `(offset, length)` of every segment with file contents.
    pub fn segments(&self, phdrs: &[u8]) -> Result<Vec<(u64, u64)>, Status> {
        let bad = Status::INVALID_PHDR_SIZE;
        let mut out = Vec::new();
        for i in 0..self.phnum {
            let at = (i * self.class.phdr_len()) as usize;
            let (offset, filesz) = match self.class {
                ElfClass::Elf32 => (
                    u64::from(le32(phdrs, at + 0x04).ok_or(bad)?),
                    u64::from(le32(phdrs, at + 0x10).ok_or(bad)?),
                ),
                ElfClass::Elf64 => (
                    le64(phdrs, at + 0x08).ok_or(bad)?,
                    le64(phdrs, at + 0x20).ok_or(bad)?,
                ),
            };
            if filesz > 0 {
                offset
                    .checked_add(filesz)
                    .ok_or(Status::INVALID_IMG_HDR_DATA_SIZE)?;
                out.push((offset, filesz));
            }
        }
        Ok(out)
    }

    /// Where the section header table ends (0 when there is none).
    pub fn section_table_end(&self) -> Option<u64> {
        if self.shoff == 0 || self.shnum == 0 {
            return Some(0);
        }
        self.shoff
            .checked_add(self.shnum.checked_mul(self.shentsize)?)
    }
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A small well-formed 64-bit programmer ELF in the shape of a Qualcomm Firehose programmer:
/// the ELF header, three program headers (the table itself as PT_NULL, the hash segment as
/// PT_NULL with Qualcomm's hash-segment flags at 0x1000, the code as PT_LOAD at 0x2000), and
/// `payload` as the code. Different payloads give different programmers (and SHA-256s).
pub fn programmer_elf(payload: &[u8]) -> Vec<u8> {
    const PHNUM: u64 = 3;
    const HASH_OFFSET: u64 = 0x1000;
    const HASH_LEN: u64 = 0x68;
    const CODE_OFFSET: u64 = 0x2000;
    let code_len = payload.len() as u64;
    let mut out = vec![0u8; (CODE_OFFSET + code_len) as usize];
    // e_ident: ELF64, little-endian, version 1, System V.
    out[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', ELFCLASS64, ELFDATA2LSB, 1, 0]);
    let put = |out: &mut Vec<u8>, at: u64, bytes: &[u8]| {
        out[at as usize..at as usize + bytes.len()].copy_from_slice(bytes)
    };
    put(&mut out, 0x10, &2u16.to_le_bytes()); // e_type: EXEC
    put(&mut out, 0x12, &0xb7u16.to_le_bytes()); // e_machine: AArch64
    put(&mut out, 0x14, &1u32.to_le_bytes()); // e_version
    put(&mut out, 0x18, &0x1400_0000u64.to_le_bytes()); // e_entry
    put(&mut out, 0x20, &ELF64_HEADER_LEN.to_le_bytes()); // e_phoff
    put(&mut out, 0x34, &(ELF64_HEADER_LEN as u16).to_le_bytes()); // e_ehsize
    put(&mut out, 0x36, &(ELF64_PHDR_LEN as u16).to_le_bytes()); // e_phentsize
    put(&mut out, 0x38, &(PHNUM as u16).to_le_bytes()); // e_phnum
    let phdrs: [(u32, u32, u64, u64, u64); 3] = [
        // (p_type, p_flags, p_offset, p_vaddr, p_filesz)
        (
            0,
            0x0700_0000,
            0,
            0,
            ELF64_HEADER_LEN + PHNUM * ELF64_PHDR_LEN,
        ),
        (0, 0x0220_0000, HASH_OFFSET, 0x1410_0000, HASH_LEN),
        (1, 0x5, CODE_OFFSET, 0x1400_0000, code_len),
    ];
    for (i, (ptype, flags, offset, vaddr, filesz)) in phdrs.into_iter().enumerate() {
        let at = ELF64_HEADER_LEN + i as u64 * ELF64_PHDR_LEN;
        put(&mut out, at, &ptype.to_le_bytes());
        put(&mut out, at + 0x04, &flags.to_le_bytes());
        put(&mut out, at + 0x08, &offset.to_le_bytes());
        put(&mut out, at + 0x10, &vaddr.to_le_bytes());
        put(&mut out, at + 0x18, &vaddr.to_le_bytes());
        put(&mut out, at + 0x20, &filesz.to_le_bytes());
        put(&mut out, at + 0x28, &filesz.to_le_bytes());
        put(&mut out, at + 0x30, &0x1000u64.to_le_bytes());
    }
    // The hash segment: a header-like preamble and the digest of the code, as a signed
    // programmer carries (its signature is what the simulated ROM's allow-list stands for).
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(payload);
    put(&mut out, HASH_OFFSET, &[0u8; 0x28]);
    put(&mut out, HASH_OFFSET + 0x28, &digest);
    put(&mut out, HASH_OFFSET + 0x48, &digest);
    put(&mut out, CODE_OFFSET, payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_programmer_parses_back() {
        let elf = programmer_elf(b"firehose code");
        let header = ElfHeader::parse(&elf[..0x40]).unwrap();
        assert_eq!(header.class, ElfClass::Elf64);
        assert_eq!(header.phoff, 0x40);
        assert_eq!(header.phnum, 3);
        assert_eq!(header.phdrs_len(), 3 * 0x38);
        let phdrs = &elf[0x40..0x40 + 3 * 0x38];
        assert_eq!(
            header.segments(phdrs).unwrap(),
            vec![(0, 0xe8), (0x1000, 0x68), (0x2000, 13)]
        );
        assert_eq!(elf.len(), 0x2000 + 13);
        assert_eq!(header.section_table_end(), Some(0));
    }

    #[test]
    fn elf32_header_parses() {
        let mut h = vec![0u8; 0x34];
        h[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1]);
        h[0x1c..0x20].copy_from_slice(&0x34u32.to_le_bytes());
        h[0x2a..0x2c].copy_from_slice(&0x20u16.to_le_bytes());
        h[0x2c..0x2e].copy_from_slice(&2u16.to_le_bytes());
        let header = ElfHeader::parse(&h).unwrap();
        assert_eq!(header.class, ElfClass::Elf32);
        assert_eq!(header.phdrs_len(), 0x40);
        let mut phdrs = vec![0u8; 0x40];
        phdrs[0x24..0x28].copy_from_slice(&0x1000u32.to_le_bytes());
        phdrs[0x30..0x34].copy_from_slice(&0x200u32.to_le_bytes());
        assert_eq!(header.segments(&phdrs).unwrap(), vec![(0x1000, 0x200)]);
    }

    #[test]
    fn bad_headers_map_to_rom_statuses() {
        assert_eq!(
            ElfHeader::class_of(b"MZ\x90\x00\x03\x00"),
            Err(Status::INVALID_ELF_HDR)
        );
        assert_eq!(ElfHeader::parse(&[]), Err(Status::INVALID_ELF_HDR));
        let mut elf = programmer_elf(b"x");
        elf[0x36] = 0x20; // wrong phentsize for ELF64
        assert_eq!(
            ElfHeader::parse(&elf[..0x40]),
            Err(Status::INVALID_PHDR_SIZE)
        );
        let mut elf = programmer_elf(b"x");
        elf[0x38..0x3a].copy_from_slice(&1000u16.to_le_bytes());
        assert_eq!(
            ElfHeader::parse(&elf[..0x40]),
            Err(Status::UNSUPPORTED_NUM_PHDRS)
        );
        // A program header table shorter than phnum says: error, not a panic.
        let header = ElfHeader::parse(&programmer_elf(b"x")[..0x40]).unwrap();
        assert_eq!(header.segments(&[0u8; 10]), Err(Status::INVALID_PHDR_SIZE));
    }
}

//! `flashgate image ls|sha256|cat IMAGE …`: look inside an image file without mounting it —
//! a `super.img` (its logical partitions, with `--partition`), an ext4 or erofs image, raw or
//! Android sparse. "Which client is in this build?" in one command. `flashgate image
//! make-super` packs partition images into a `super.img` as `lpmake` does.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use station::image::{
    identify, list_logical_partitions, Finder, ImageFileSource, ImageKind, Listing, SuperListing,
};

mod make_super;

/// Files `cat` and `sha256` stream at most (a whole `system` fits).
const MAX_FILE: u64 = 64 << 30;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(clap::Args)]
struct Where {
    /// The image file: a super.img, or an ext4 or erofs image; raw or Android sparse.
    image: PathBuf,
    /// The logical partition of a super image to look in (`system` or `system_a`).
    #[arg(long, short = 'p', value_name = "NAME")]
    partition: Option<String>,
    /// The LP metadata slot to read a super image in: a (the default) or b. A super.img built
    /// for flashing holds the same metadata in every slot.
    #[arg(long, value_name = "a|b", default_value = "a", value_parser = parse_slot)]
    slot: u32,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List a super image's logical partitions (name, size, group, filesystem), or a
    /// directory of a filesystem (`/` by default; in a super image, with --partition).
    Ls {
        #[command(flatten)]
        at: Where,
        /// The directory inside the filesystem.
        path: Option<String>,
    },
    /// Print the SHA-256 of a file inside the image, as `sha256sum` does.
    Sha256 {
        #[command(flatten)]
        at: Where,
        /// The file inside the filesystem, e.g. /system/priv-app/X/X.apk.
        path: String,
    },
    /// Write a file inside the image to standard output.
    Cat {
        #[command(flatten)]
        at: Where,
        /// The file inside the filesystem.
        path: String,
    },
    /// Pack partition images into a super image (raw or sparse) and/or write its
    /// super_empty.img, as AOSP's lpmake does (same flags), e.g. `make-super --device-size 4G
    /// --metadata-slots 3 --group main_a:2G --partition system_a:readonly:auto:main_a=system.img
    /// --sparse --output super.img`.
    MakeSuper(make_super::MakeSuperArgs),
}

fn parse_slot(text: &str) -> Result<u32, String> {
    match text.as_bytes() {
        &[letter] if letter.is_ascii_lowercase() => Ok(u32::from(letter - b'a')),
        _ => Err(format!("`{text}` is not a slot: write a or b")),
    }
}

impl Where {
    fn open(&self) -> anyhow::Result<ImageFileSource> {
        Ok(ImageFileSource::open(&self.image)?)
    }

    fn finder(&self) -> Finder {
        match &self.partition {
            Some(name) => Finder::in_logical_partition(name, self.slot),
            None => Finder {
                slot: self.slot,
                ..Finder::whole_image()
            },
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match args.command {
        ImageCommand::Ls { at, path } => ls(&at, path.as_deref(), &mut out)?,
        ImageCommand::Sha256 { at, path } => {
            let (_, found) = at.finder().hash_file(at.open()?, &path, MAX_FILE);
            let found = found.with_context(|| at.image.display().to_string())?;
            writeln!(out, "{}  {path}", found.sha256)?;
        }
        ImageCommand::MakeSuper(args) => make_super::run(args, &mut out)?,
        ImageCommand::Cat { at, path } => {
            let mut buffered = io::BufWriter::with_capacity(1 << 20, &mut out);
            let (_, found) = at
                .finder()
                .read_file(at.open()?, &path, MAX_FILE, &mut buffered);
            found.with_context(|| at.image.display().to_string())?;
            buffered.flush()?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn ls(at: &Where, path: Option<&str>, out: &mut impl Write) -> anyhow::Result<()> {
    let image = &at.image;
    if at.partition.is_none() && path.is_none() {
        let source = at.open()?;
        let storage = source.storage();
        let len = source.len();
        let (source, kind) = identify(source, Some(len));
        if let ImageKind::Super | ImageKind::SuperEmpty = kind.with_context(|| describe(image))? {
            let (_, listing) = list_logical_partitions(source, at.slot);
            let listing = listing.with_context(|| describe(image))?;
            write!(out, "{}", render_super(image, storage.as_str(), &listing))?;
            return Ok(());
        }
    }
    let (_, listing) = at.finder().list_dir(at.open()?, path.unwrap_or("/"));
    let listing = listing.with_context(|| describe(image))?;
    write!(out, "{}", render_listing(&listing))?;
    Ok(())
}

fn describe(image: &Path) -> String {
    image.display().to_string()
}

fn render_super(image: &Path, storage: &str, listing: &SuperListing) -> String {
    let kind = match listing.layout {
        protocols::lp::ImageLayout::Super => "super image",
        protocols::lp::ImageLayout::SuperEmpty => "super_empty image (metadata only)",
    };
    let slot = char::from(b'a' + listing.slot.min(25) as u8);
    let mut text = format!(
        "{}: {storage} {kind}, metadata slot {} of {} (slot {slot})\n",
        image.display(),
        listing.slot,
        listing.slot_count
    );
    let width = listing
        .partitions
        .iter()
        .map(|p| p.name.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let group_width = listing
        .partitions
        .iter()
        .map(|p| p.group.len())
        .chain([5])
        .max()
        .unwrap_or(5);
    text.push_str(&format!(
        "{:width$}  {:>12}  {:>9}  {:group_width$}  FILESYSTEM\n",
        "NAME", "BYTES", "SIZE", "GROUP"
    ));
    for p in &listing.partitions {
        text.push_str(&format!(
            "{:width$}  {:>12}  {:>9}  {:group_width$}  {}\n",
            p.name,
            p.size,
            human(p.size),
            p.group,
            p.content.as_str()
        ));
    }
    text
}

fn render_listing(listing: &Listing) -> String {
    let mut entries: Vec<_> = listing.entries.iter().collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut text = String::new();
    for entry in entries {
        text.push_str(&format!(
            "{} {:>12}  {}\n",
            entry.kind.letter(),
            entry.size,
            entry.name_lossy().escape_debug()
        ));
    }
    text
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_sizes_read_naturally() {
        assert_eq!(parse_slot("a"), Ok(0));
        assert_eq!(parse_slot("b"), Ok(1));
        assert!(parse_slot("_a").is_err());
        assert!(parse_slot("A").is_err());
        assert_eq!(human(512), "512 B");
        assert_eq!(human(256 << 20), "256.0 MiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }
}

//! `flashgate image make-super`: a `super.img` (raw, or Android sparse for fastboot and EDL)
//! and/or a `super_empty.img` from a partition layout and partition images, as AOSP's `lpmake`
//! makes them, with lpmake's flag spellings (`--device-size`, `--metadata-size`,
//! `--metadata-slots`, `--group NAME:SIZE`, `--partition NAME:ATTRS:SIZE[:GROUP]`,
//! `--image NAME=FILE`, `--sparse`, `--block-size`, `--alignment`, `--alignment-offset`,
//! `--super-name`, `--virtual-ab`).
//!
//! Where we differ from lpmake, and why:
//! - `--output` always writes the whole image and `--super-empty` the metadata-only one (lpmake
//!   switches between the two on whether `--image` was given, so a layout without images needs
//!   `--force-full-image`); both may be written by one command, from the same metadata.
//! - A partition's size may be `auto` (its image's size) and its image may follow the spec
//!   (`system_a:readonly:auto:main=system.img`), as AOSP's `build_super_image.py` sizes
//!   partitions from their images before it calls lpmake.
//! - Sizes take `K`/`M`/`G` suffixes (powers of 1024) and `0x` hex besides plain bytes.
//! - In a sparse image, blocks that are one 32-bit word repeated become FILL chunks (metadata
//!   padding, zeros inside images) and bytes no partition image covers are DONT_CARE, so a
//!   factory `super.img` holding a few MiB of filesystems takes a few MiB whatever the size of
//!   `super`.
//!
//! Nothing is held whole in memory: input images (raw or sparse) are read through their chunk
//! plans and streamed into the output, which is written beside its destination and renamed
//! into place only when complete.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use protocols::lp::{
    self, attr, header_flag, DeviceSpec, Metadata, MetadataBuilder, DEFAULT_GROUP,
};

mod layout;

use layout::{InputImage, Layout};

#[derive(clap::Args)]
pub struct MakeSuperArgs {
    /// Write the whole super image here: flashable to `super` from the bootloader or through
    /// EDL (raw, or Android sparse with --sparse).
    #[arg(
        long,
        short = 'o',
        visible_alias = "out",
        value_name = "FILE",
        required_unless_present = "super_empty"
    )]
    output: Option<PathBuf>,
    /// Write the metadata-only image here (the geometry then one metadata copy), what
    /// `fastboot update-super` / `wipe-super` send to fastbootd.
    #[arg(long, value_name = "FILE")]
    super_empty: Option<PathBuf>,
    /// Bytes of the super partition on the phone (recorded in the metadata: give it exactly).
    #[arg(long, short = 'd', visible_alias = "size", value_name = "SIZE", value_parser = parse_size)]
    device_size: u64,
    /// Bytes reserved for each metadata copy.
    #[arg(long, short = 'm', value_name = "SIZE", default_value = "65536", value_parser = parse_size)]
    metadata_size: u64,
    /// Metadata slots: 3 on an A/B phone (build_super_image.py), 2 otherwise.
    #[arg(long, short = 's', visible_alias = "slots", value_name = "COUNT")]
    metadata_slots: u32,
    /// A partition group and its maximum size (0: unlimited), e.g.
    /// qti_dynamic_partitions_a:2G. Repeat for each group.
    #[arg(long = "group", short = 'g', value_name = "NAME:SIZE")]
    groups: Vec<String>,
    /// A logical partition: NAME:ATTRS:SIZE[:GROUP][=IMAGE], ATTRS `none` or `readonly`,
    /// SIZE in bytes or `auto` (its image's size), GROUP `default` if left out. Repeat for each
    /// partition; they are laid out in this order.
    #[arg(long = "partition", short = 'p', value_name = "SPEC")]
    partitions: Vec<String>,
    /// The image a partition starts with, PARTITION=FILE (raw or Android sparse).
    #[arg(long = "image", short = 'i', value_name = "PARTITION=FILE")]
    images: Vec<String>,
    /// Write --output as an Android sparse image.
    #[arg(long, short = 'S')]
    sparse: bool,
    /// Logical block size (and the sparse image's block size).
    #[arg(long, short = 'b', value_name = "SIZE", default_value = "4096", value_parser = parse_size)]
    block_size: u64,
    /// Partition alignment in bytes.
    #[arg(long, short = 'a', value_name = "SIZE", default_value = "1048576", value_parser = parse_size)]
    alignment: u64,
    /// Alignment offset in bytes.
    #[arg(long, short = 'O', value_name = "SIZE", default_value = "0", value_parser = parse_size)]
    alignment_offset: u64,
    /// The physical partition that holds the metadata.
    #[arg(long, short = 'n', value_name = "NAME", default_value = "super")]
    super_name: String,
    /// Mark the metadata for a Virtual A/B phone (header flag VIRTUAL_AB_DEVICE).
    #[arg(long)]
    virtual_ab: bool,
}

/// `4096`, `0x1000`, `64K`, `256M`, `4G` (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a size (e.g. 4096, 0x1000, 64K, 256M, 4G)");
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|_| bad());
    }
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        _ => return Err(bad()),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionSpec {
    name: String,
    attributes: u32,
    /// `None`: `auto`, the image's size.
    size: Option<u64>,
    group: String,
    image: Option<PathBuf>,
}

fn parse_partition(spec: &str) -> Result<PartitionSpec, String> {
    let form = "write NAME:ATTRS:SIZE[:GROUP][=IMAGE], e.g. system_a:readonly:auto:main=system.img";
    let (layout, image) = match spec.split_once('=') {
        Some((layout, image)) if !image.is_empty() => (layout, Some(PathBuf::from(image))),
        Some(_) => return Err(format!("--partition `{spec}`: no image after `=`; {form}")),
        None => (spec, None),
    };
    let fields: Vec<&str> = layout.split(':').collect();
    let (name, attributes, size, group) = match fields[..] {
        [name, attributes, size] => (name, attributes, size, DEFAULT_GROUP),
        [name, attributes, size, group] => (name, attributes, size, group),
        _ => return Err(format!("--partition `{spec}`: {form}")),
    };
    let attributes = match attributes {
        "none" => 0,
        "readonly" => attr::READONLY,
        other => {
            return Err(format!(
                "--partition `{spec}`: attributes `{other}` are neither `none` nor `readonly`"
            ))
        }
    };
    let size = match size {
        "auto" => None,
        size => Some(parse_size(size).map_err(|e| format!("--partition `{spec}`: {e}"))?),
    };
    Ok(PartitionSpec {
        name: name.to_string(),
        attributes,
        size,
        group: group.to_string(),
        image,
    })
}

fn parse_group(spec: &str) -> Result<(String, u64), String> {
    let (name, size) = spec.rsplit_once(':').ok_or_else(|| {
        format!("--group `{spec}`: write NAME:SIZE, e.g. qti_dynamic_partitions_a:2G")
    })?;
    let size = parse_size(size).map_err(|e| format!("--group `{spec}`: {e}"))?;
    Ok((name.to_string(), size))
}

/// The partitions, their images and the metadata, as the command line describes them.
struct Build {
    metadata: Metadata,
    images: Vec<InputImage>,
}

fn build(args: &MakeSuperArgs) -> anyhow::Result<Build> {
    let block_size = u32::try_from(args.block_size)
        .map_err(|_| anyhow::anyhow!("--block-size {} is too large", args.block_size))?;
    let metadata_size = u32::try_from(args.metadata_size)
        .map_err(|_| anyhow::anyhow!("--metadata-size {} is too large", args.metadata_size))?;
    let device = DeviceSpec {
        partition_name: args.super_name.clone(),
        size: args.device_size,
        alignment: u32::try_from(args.alignment)
            .map_err(|_| anyhow::anyhow!("--alignment {} is too large", args.alignment))?,
        alignment_offset: u32::try_from(args.alignment_offset).map_err(|_| {
            anyhow::anyhow!("--alignment-offset {} is too large", args.alignment_offset)
        })?,
        logical_block_size: block_size,
    };
    let mut builder = MetadataBuilder::new(device, metadata_size, args.metadata_slots)
        .context("--device-size / --metadata-size / --metadata-slots / --block-size")?;
    if args.virtual_ab {
        builder.set_header_flags(header_flag::VIRTUAL_AB_DEVICE);
    }
    for spec in &args.groups {
        let (name, size) = parse_group(spec).map_err(anyhow::Error::msg)?;
        builder
            .add_group(&name, size)
            .with_context(|| format!("--group `{spec}`"))?;
    }
    let mut specs = Vec::new();
    for text in &args.partitions {
        let spec = parse_partition(text).map_err(anyhow::Error::msg)?;
        builder
            .add_partition(&spec.name, &spec.group, spec.attributes)
            .with_context(|| format!("--partition `{text}`"))?;
        specs.push((text.as_str(), spec));
    }
    for text in &args.images {
        let (name, path) = text
            .split_once('=')
            .filter(|(name, path)| !name.is_empty() && !path.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!("--image `{text}`: write PARTITION=FILE, e.g. system_a=system.img")
            })?;
        let Some((_, spec)) = specs.iter_mut().find(|(_, s)| s.name == name) else {
            bail!("--image `{text}`: no --partition {name} is declared");
        };
        if spec.image.is_some() {
            bail!("--image `{text}`: partition {name} already has an image");
        }
        spec.image = Some(PathBuf::from(path));
    }
    let mut images = Vec::new();
    for (text, spec) in &specs {
        let image = match &spec.image {
            Some(path) => Some(InputImage::open(&spec.name, path)?),
            None => None,
        };
        let size = match (spec.size, &image) {
            (Some(size), Some(image)) if image.len() > size => bail!(
                "--partition `{text}`: its image {} {} {} bytes, more than the partition's \
                 {size}: give the partition at least {} bytes (or size `auto`)",
                image.path.display(),
                if image.sparse { "expands to" } else { "has" },
                image.len(),
                image.len()
            ),
            (Some(size), _) => size,
            (None, Some(image)) => image.len(),
            (None, None) => bail!(
                "--partition `{text}`: size `auto` is its image's size, and no image is given \
                 (after `=`, or with --image {}=FILE)",
                spec.name
            ),
        };
        builder
            .resize_partition(&spec.name, size)
            .map_err(|e| match e {
                lp::LpError::GroupFull { .. } => anyhow::anyhow!(
                    "--partition `{text}` does not fit its group: {e}; give the group a larger \
                     maximum (--group NAME:SIZE) or the partition a smaller size"
                ),
                lp::LpError::NoSpace { .. } => anyhow::anyhow!(
                    "--partition `{text}` does not fit in super: {e}; give a larger \
                     --device-size or smaller partitions"
                ),
                other => anyhow::Error::new(other).context(format!("--partition `{text}`")),
            })?;
        images.extend(image);
    }
    let metadata = builder.export().context("the metadata built")?;
    Ok(Build { metadata, images })
}

pub fn run(args: MakeSuperArgs, out: &mut impl Write) -> anyhow::Result<()> {
    for (what, path) in [
        ("--output", &args.output),
        ("--super-empty", &args.super_empty),
    ] {
        let Some(path) = path else { continue };
        let same = |input: &str| {
            let input = input.split_once('=').map_or(input, |(_, p)| p);
            Path::new(input)
                .canonicalize()
                .ok()
                .zip(path.canonicalize().ok())
                .is_some_and(|(a, b)| a == b)
        };
        if args.partitions.iter().chain(&args.images).any(|s| same(s)) {
            bail!(
                "{what} {} is also an input image: write the super image elsewhere",
                path.display()
            );
        }
    }
    let mut build = build(&args)?;
    if let Some(path) = &args.super_empty {
        let bytes = lp::super_empty_image(&build.metadata)?;
        write_atomically(path, |file| {
            file.write_all(&bytes)
                .with_context(|| format!("writing {}", path.display()))
        })?;
        writeln!(
            out,
            "{}: super_empty image, {} bytes (metadata only)",
            path.display(),
            bytes.len()
        )?;
    }
    if let Some(path) = &args.output {
        let layout = Layout::new(&build.metadata, &build.images)?;
        let written = write_atomically(path, |file| {
            if args.sparse {
                layout.write_sparse(&mut build.images, file, args.block_size)
            } else {
                layout.write_raw(&mut build.images, file)
            }
        })
        .with_context(|| format!("writing {}", path.display()))?;
        writeln!(
            out,
            "{}: {} super image of {} bytes ({}), {} bytes written",
            path.display(),
            if args.sparse { "sparse" } else { "raw" },
            layout.device_size,
            super::human(layout.device_size),
            written
        )?;
    }
    describe(&build, out)?;
    Ok(())
}

/// What the metadata holds, one partition a line, and which image each starts with.
fn describe(build: &Build, out: &mut impl Write) -> io::Result<()> {
    let m = &build.metadata;
    writeln!(
        out,
        "metadata: {} slots of {} bytes, block size {}, partition `{}`",
        m.geometry.metadata_slot_count,
        m.geometry.metadata_max_size,
        m.geometry.logical_block_size,
        m.super_device().map_or("", |d| d.partition_name.as_str())
    )?;
    for p in m.summaries() {
        let image = build.images.iter().find(|i| i.partition == p.name);
        let image = image.map_or(String::new(), |i| {
            format!(
                "  <- {} ({}, {} bytes)",
                i.path.display(),
                if i.sparse { "sparse" } else { "raw" },
                i.len()
            )
        });
        writeln!(
            out,
            "  {:<20} {:>12}  {:<28} {}{image}",
            p.name,
            p.size,
            p.group,
            if p.attributes & attr::READONLY != 0 {
                "readonly"
            } else {
                "none"
            }
        )?;
    }
    Ok(())
}

/// Writes `path` through a temporary file beside it, renamed into place once `write` is done:
/// a refused or failed command leaves no half-written image behind. Returns what `write` does.
fn write_atomically<T>(
    path: &Path,
    write: impl FnOnce(&mut File) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".make-super-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let value = write(temp.as_file_mut())?;
    // A temporary file is private (0600); an image is not.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("setting the permissions of {}", path.display()))?;
    }
    temp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    temp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_specs_read_as_lpmake_writes_them() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        for bad in ["", "G", "4T", "-1", "1.5G", "99999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_partition("system_a:readonly:auto:main=out/system.img"),
            Ok(PartitionSpec {
                name: "system_a".into(),
                attributes: attr::READONLY,
                size: None,
                group: "main".into(),
                image: Some("out/system.img".into()),
            })
        );
        assert_eq!(
            parse_partition("vendor_b:none:0"),
            Ok(PartitionSpec {
                name: "vendor_b".into(),
                attributes: 0,
                size: Some(0),
                group: DEFAULT_GROUP.into(),
                image: None,
            })
        );
        let refused = |spec: &str| parse_partition(spec).unwrap_err();
        assert!(refused("system_a:rw:4096").contains("neither `none` nor `readonly`"));
        assert!(refused("system_a:readonly").contains("NAME:ATTRS:SIZE"));
        assert!(refused("system_a:readonly:4096:main=").contains("no image after"));
        assert_eq!(parse_group("main:2G"), Ok(("main".into(), 2 << 30)));
        assert!(parse_group("main").is_err());
    }
}

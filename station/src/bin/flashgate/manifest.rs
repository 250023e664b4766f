//! `flashgate manifest build`: a product manifest made from a release folder, for the release to
//! sign (`minisign -S -m <manifest>`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use station::config::RegionCode;
use station::digest::Sha256Digest;
use station::manifest_build::{build, BuildRequest};

use crate::output_file::OutputFile;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ManifestCommand,
}

#[derive(clap::Subcommand)]
enum ManifestCommand {
    /// Build the product manifest from a release folder (one sub-folder per region: its image
    /// files, and its rawprogram/patch package where there is one): sizes and SHA-256 of every
    /// file, the activation client found in the images and hashed, the build id read from
    /// build.prop, and the flash plan from the template. Refuses a region whose client is not
    /// the one --allow names for it, or whose images disagree on the build id.
    Build(BuildArgs),
}

#[derive(clap::Args)]
struct BuildArgs {
    /// The template: product, identity, sizes, file names, flash plan, the client's app name
    /// and verify route (configs/demo/templates/*.yaml).
    #[arg(long)]
    template: PathBuf,
    /// The release folder: one sub-folder per region, named by its code (00EEA/).
    #[arg(long)]
    release: PathBuf,
    /// The station's image root (manifest paths are relative to it); the release folder lies
    /// inside it.
    #[arg(long)]
    image_root: PathBuf,
    /// REGION=SHA256: the activation client the release engineer allow-lists for a region;
    /// once per region of the release, in the order the manifest lists them.
    #[arg(long, value_name = "REGION=SHA256", required = true, value_parser = parse_allow)]
    allow: Vec<(RegionCode, Sha256Digest)>,
    /// Where to write the manifest (`<products_dir>/<product>.yaml`); written whole or not at
    /// all.
    #[arg(long)]
    out: PathBuf,
}

fn parse_allow(text: &str) -> Result<(RegionCode, Sha256Digest), String> {
    let (region, digest) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not REGION=SHA256"))?;
    let region = RegionCode::parse(region)?;
    let digest = Sha256Digest::parse(digest).map_err(|e| e.to_string())?;
    Ok((region, digest))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ManifestCommand::Build(args) => build_manifest(args),
    }
}

fn build_manifest(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let request = BuildRequest {
        template: args.template,
        release: args.release,
        image_root: args.image_root,
        allow: args.allow,
        output: args.out.clone(),
    };
    let text = build(&request)?;
    let out = OutputFile::create(&args.out)?;
    out.file()
        .write_all(text.as_bytes())
        .with_context(|| format!("writing {}", args.out.display()))?;
    out.commit()?;
    eprintln!(
        "wrote {} ({} region(s)); sign it for the stations: minisign -S -m {}",
        args.out.display(),
        request.allow.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

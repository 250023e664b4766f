//! `flashgate manifest build`: the demo manifests are exactly what the tool makes from the demo
//! release (so `make-images.sh` regenerates them), and a release is refused when a region's
//! client is not the allow-listed one, when its images disagree on the build id, or when a
//! region folder has no allow-list entry.

use std::path::{Path, PathBuf};
use std::process::Command;

use flashgate_scenarios::batch::demo_dir;
use flashgate_scenarios::flashgate_bin;
use protocols::external_tool;
use station::config::{ProductManifest, RegionCode};
use station::digest::Sha256Digest;
use station::manifest_build::{build, BuildRequest, ManifestBuildError};

/// Each region's allow-listed client, in the manifest's order.
fn allow_list(manifest: &Path) -> Vec<(RegionCode, Sha256Digest)> {
    let product = ProductManifest::load(manifest, &demo_dir().join("images")).unwrap();
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut regions: Vec<(usize, RegionCode, Sha256Digest)> = product
        .regions
        .values()
        .map(|set| {
            let at = text.find(&format!("\n  {}:\n", set.region)).unwrap();
            (at, set.region.clone(), set.activation_client.sha256)
        })
        .collect();
    regions.sort_by_key(|(at, _, _)| *at);
    regions.into_iter().map(|(_, r, d)| (r, d)).collect()
}

#[test]
fn the_demo_manifests_are_what_the_tool_builds_from_the_demo_release() {
    let demo = demo_dir();
    let out = tempfile::tempdir().unwrap();
    for (product, release) in [("fgdemo", "images"), ("fgmodern", "images/fgmodern")] {
        let committed = demo.join(format!("products/{product}.yaml"));
        let built = out.path().join(format!("{product}.yaml"));
        let mut command = Command::new(flashgate_bin());
        command
            .args(["manifest", "build", "--template"])
            .arg(demo.join(format!("templates/{product}.yaml")))
            .arg("--release")
            .arg(demo.join(release))
            .arg("--image-root")
            .arg(demo.join("images"))
            .arg("--out")
            .arg(&built);
        for (region, digest) in allow_list(&committed) {
            command.arg("--allow").arg(format!("{region}={digest}"));
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(&built).unwrap(),
            std::fs::read_to_string(&committed).unwrap(),
            "{product}: the committed manifest is not the tool's output (run make-images.sh)"
        );
    }
}

fn demo_request(allow: Vec<(RegionCode, Sha256Digest)>) -> BuildRequest {
    let demo = demo_dir();
    BuildRequest {
        template: demo.join("templates/fgdemo.yaml"),
        release: demo.join("images"),
        image_root: demo.join("images"),
        allow,
        output: PathBuf::from("fgdemo.yaml"),
    }
}

#[test]
fn a_region_whose_client_is_not_the_allow_listed_one_is_refused() {
    let mut allow = allow_list(&demo_dir().join("products/fgdemo.yaml"));
    // The release engineer allow-lists the EEA client for 00CN too: the CN build carries the
    // China client, which is refused.
    let eea = allow.iter().find(|(r, _)| r.as_str() == "00EEA").unwrap().1;
    let cn = allow
        .iter_mut()
        .find(|(r, _)| r.as_str() == "00CN")
        .unwrap();
    let china = cn.1;
    cn.1 = eea;
    let error = build(&demo_request(allow)).unwrap_err();
    assert!(
        matches!(error, ManifestBuildError::ClientNotAllowed { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(
            "region 00CN: the activation client /priv-app/ActivationClient/ActivationClient.apk in "
        ),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "has SHA-256 {china}, but the release engineer allow-lists {eea} for 00CN"
        )),
        "{message}"
    );
}

#[test]
fn a_region_folder_without_an_allow_list_entry_is_refused() {
    let allow: Vec<_> = allow_list(&demo_dir().join("products/fgdemo.yaml"))
        .into_iter()
        .filter(|(r, _)| r.as_str() != "00WW")
        .collect();
    let error = build(&demo_request(allow)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("but no --allow 00WW=<sha256> on the command line"),
        "{error}"
    );
}

fn ext4(tree: &Path, image: &Path) {
    let output = external_tool::command("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-d"])
        .arg(tree)
        .arg(image)
        .arg("1M")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A release whose `system` and `product` images were built from different builds.
#[test]
fn images_that_disagree_on_the_build_id_are_refused_and_the_edl_plan_follows_the_package() {
    let root = tempfile::tempdir().unwrap();
    let region = root.path().join("images/00EEA");
    std::fs::create_dir_all(&region).unwrap();
    let client = b"ActivationClient for 00EEA\n";
    let system = root.path().join("system");
    std::fs::create_dir_all(system.join("priv-app/ActivationClient")).unwrap();
    std::fs::write(
        system.join("priv-app/ActivationClient/ActivationClient.apk"),
        client,
    )
    .unwrap();
    std::fs::write(
        system.join("build.prop"),
        "ro.build.display.id=FG.00EEA.2\n",
    )
    .unwrap();
    ext4(&system, &region.join("system.img"));
    let product = root.path().join("product");
    std::fs::create_dir_all(&product).unwrap();
    std::fs::write(
        product.join("build.prop"),
        "ro.build.display.id=FG.00EEA.1\n",
    )
    .unwrap();
    ext4(&product, &region.join("product.img"));
    let template = root.path().join("fgtest.template.yaml");
    std::fs::write(
        &template,
        "product: fgtest
identity: { fastboot_product: fgtest }
files: { system: system.img, product: product.img, rawprogram0: rawprogram0.xml }
flash:
  fastboot:
    slot: all
    set_active: a
    partitions:
      - { partition: system, image: system }
      - { partition: product, image: product }
  edl: { storage: ufs, rawprogram: [rawprogram0] }
activation_client: { app: ActivationClient, verify: host_readback }
",
    )
    .unwrap();
    let request = BuildRequest {
        template: template.clone(),
        release: root.path().join("images"),
        image_root: root.path().join("images"),
        allow: vec![(
            RegionCode::parse("00EEA").unwrap(),
            Sha256Digest::of_bytes(client),
        )],
        output: root.path().join("fgtest.yaml"),
    };
    let error = build(&request).unwrap_err();
    assert_eq!(
        error.to_string(),
        "region 00EEA: the images disagree on the build id (ro.build.display.id): \
         00EEA/product.img /build.prop says FG.00EEA.1, 00EEA/system.img /build.prop says \
         FG.00EEA.2; a release is one build: rebuild the region from one build"
    );

    // One build: the manifest is made, without an EDL plan (the region has no package), and
    // the station's loader takes it.
    std::fs::write(
        product.join("build.prop"),
        "ro.build.display.id=FG.00EEA.2\n",
    )
    .unwrap();
    ext4(&product, &region.join("product.img"));
    let text = build(&request).unwrap();
    assert!(text.contains("    build_id: FG.00EEA.2\n"), "{text}");
    assert!(!text.contains("edl:"), "{text}");
    assert!(
        text.contains(
            "    activation_client:\n      partition: system\n      image: system\n      path: \
             /priv-app/ActivationClient/ActivationClient.apk\n"
        ),
        "{text}"
    );
    std::fs::write(&request.output, &text).unwrap();
    let manifest = ProductManifest::load(&request.output, &root.path().join("images")).unwrap();
    let set = manifest.regions.values().next().unwrap();
    assert_eq!(set.build_id, "FG.00EEA.2");
    assert!(set.edl.is_none());
}

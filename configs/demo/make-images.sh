#!/usr/bin/env bash
# Regenerates the demo image sets in images/ and the product manifests products/fgdemo.yaml
# (ext4 `system`, a 2018 layout) and products/fgmodern.yaml (`super` with an erofs `system` and
# an ext4 `vendor`, images under images/fgmodern/), built from the images by `flashgate manifest
# build` (templates/) and signed with the DEMO-ONLY key in keys/.
#
# The images are committed, so nothing here is needed to run the demo; run this only to change
# them. Needs e2fsprogs (mke2fs), android-sdk-libsparse-utils (img2simg), erofs-utils
# (mkfs.erofs) and minisign (signs the manifests with the demo key in keys/), and builds
# flashgate (`image make-super`, `sim programmer-elf`):
#   apt-get install e2fsprogs android-sdk-libsparse-utils erofs-utils minisign
#
# Output is reproducible as far as mke2fs allows: fixed UUIDs, hash seeds and timestamps
# (E2FSPROGS_FAKE_TIME, file mtimes, mkfs.erofs -T), files added in sorted order. Checked with
# e2fsprogs 1.47.0 and erofs-utils 1.5.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")"

for tool in mke2fs debugfs img2simg sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "make-images.sh: $tool not found; apt-get install e2fsprogs android-sdk-libsparse-utils" >&2
    exit 1
  }
done

EPOCH=1764288000 # 2025-11-28 00:00:00 UTC
export E2FSPROGS_FAKE_TIME=$EPOCH
SYSTEM_SIZE_KIB=1024
# Which regions ship their system image as Android sparse (the others raw).
declare -A SPARSE=([00WW]=no [00EEA]=yes [00CN]=yes)
declare -A UUID=(
  [00WW]=5f1a0000-0000-4000-8000-000000000001
  [00EEA]=5f1a0000-0000-4000-8000-000000000002
  [00CN]=5f1a0000-0000-4000-8000-000000000003
)
declare -A SERVER=([00WW]=activation.ww.example.com [00EEA]=activation.eu.example.com [00CN]=activation.cn.example.com)
REGIONS=(00WW 00EEA 00CN)
BUILD_DATE=20251128

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

le32() { # little-endian u32 as raw bytes
  local v=$1
  printf "\\x$(printf %02x $((v & 255)))\\x$(printf %02x $((v >> 8 & 255)))\\x$(printf %02x $((v >> 16 & 255)))\\x$(printf %02x $((v >> 24 & 255)))"
}
be32() {
  local v=$1
  printf "\\x$(printf %02x $((v >> 24 & 255)))\\x$(printf %02x $((v >> 16 & 255)))\\x$(printf %02x $((v >> 8 & 255)))\\x$(printf %02x $((v & 255)))"
}
pad_to() { # pad file $1 with zeros to a multiple of $2 bytes
  local size; size=$(stat -c %s "$1")
  local rem=$(( (size % $2) ))
  [ "$rem" -eq 0 ] || head -c $(( $2 - rem )) /dev/zero >>"$1"
}

# The activation client: region-specific bytes (a stand-in for the vendor's signed APK).
make_client() {
  local region=$1 out=$2
  {
    printf 'ActivationClient demo build for region %s\n' "$region"
    for i in $(seq 1 1500); do
      printf 'region=%s server=https://%s/v1/activate record=%05d\n' "$region" "${SERVER[$region]}" "$i"
    done
  } >"$out"
}

# A system partition tree: the same apps everywhere except the activation client.
make_system_tree() {
  local region=$1 root=$2
  mkdir -p "$root/priv-app/ActivationClient" "$root/app/Settings" "$root/etc"
  make_client "$region" "$root/priv-app/ActivationClient/ActivationClient.apk"
  for i in $(seq 1 3000); do printf 'Settings demo resource %05d\n' "$i"; done >"$root/app/Settings/Settings.apk"
  {
    echo "ro.product.name=fgdemo"
    echo "ro.build.display.id=FGDEMO.$region.$BUILD_DATE"
    echo "ro.product.region=$region"
  } >"$root/build.prop"
  printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
  find "$root" -exec touch -h -d "@$EPOCH" {} +
}

make_system() {
  local region=$1 out=$2
  local tree="$work/system-$region"
  make_system_tree "$region" "$tree"
  local raw="$work/system-$region.raw"
  rm -f "$raw"
  mke2fs -q -F -t ext4 -b 4096 -N 64 -L system -U "${UUID[$region]}" \
    -E "hash_seed=${UUID[$region]},root_owner=0:0,lazy_itable_init=0,nodiscard" \
    -O ^has_journal,^resize_inode -m 0 \
    -d "$tree" "$raw" "${SYSTEM_SIZE_KIB}k" >/dev/null
  # mke2fs -d copies each source file's ctime, which no tool can set: pin them with debugfs.
  (cd "$tree" && find . -mindepth 1 | sort | sed 's|^\.||') |
    while read -r path; do echo "set_inode_field $path ctime @$EPOCH"; done >"$work/ctime-$region"
  echo "set_inode_field / ctime @$EPOCH" >>"$work/ctime-$region"
  debugfs -w -f "$work/ctime-$region" "$raw" >/dev/null 2>&1
  if [ "${SPARSE[$region]}" = yes ]; then
    img2simg "$raw" "$out"
  else
    cp "$raw" "$out"
  fi
}

# An Android boot image, header v0 (page size 4096): kernel and ramdisk are demo text.
make_boot() {
  local region=$1 out=$2 name=${3:-fgdemo}
  local kernel="$work/kernel-$region" ramdisk="$work/ramdisk-$region"
  printf 'flashgate demo kernel (not bootable) for region %s\n' "$region" >"$kernel"
  printf 'flashgate demo ramdisk for region %s\n' "$region" >"$ramdisk"
  local ks rs; ks=$(stat -c %s "$kernel"); rs=$(stat -c %s "$ramdisk")
  {
    printf 'ANDROID!'
    le32 "$ks"; le32 $((0x10008000))
    le32 "$rs"; le32 $((0x11000000))
    le32 0; le32 $((0x10f00000))
    le32 $((0x10000100)); le32 4096
    le32 0; le32 0            # header_version, os_version
    printf '%s' "$name"; head -c $((16 - ${#name})) /dev/zero # name[16]
    local cmdline="console=ttyMSM0 androidboot.region=$region"
    printf '%s' "$cmdline"; head -c $((512 - ${#cmdline})) /dev/zero
    head -c 32 /dev/zero      # id
    head -c 1024 /dev/zero    # extra cmdline
  } >"$out"
  pad_to "$out" 4096
  cat "$kernel" >>"$out"; pad_to "$out" 4096
  cat "$ramdisk" >>"$out"; pad_to "$out" 4096
}

# An unsigned vbmeta image (libavb header, algorithm NONE, no descriptors).
make_vbmeta() {
  local out=$1
  {
    printf 'AVB0'
    be32 1; be32 0            # required libavb version 1.0
    head -c 116 /dev/zero     # block sizes, algorithm NONE, offsets, rollback index, flags
    printf 'avbtool 1.2.0 (flashgate demo)'
    head -c $((48 - 30)) /dev/zero
    head -c 80 /dev/zero      # reserved
  } >"$out"
}

for region in "${REGIONS[@]}"; do
  mkdir -p "images/$region"
  make_system "$region" "images/$region/system.img"
  make_boot "$region" "images/$region/boot.img"
  make_vbmeta "images/$region/vbmeta.img"
  make_client "$region" "$work/client-$region.apk"
done

# The demo EDL package. The programmer is a simulated one (flashgate writes it; its SHA-256 is
# what the simulated phones' secure boot accepts through the manifest). The rawprogram files
# place each image at its partition of the simulated phone's default UFS layout (LUN 0, 4096-byte
# sectors: `protocols::sim::phone::default_layout`), both slots, as a factory package does; the
# patch file is empty (the phones' GPT is already in place).
FLASHGATE=${FLASHGATE:-"cargo run -q --bin flashgate --"}
mkdir -p images/edl
$FLASHGATE sim programmer-elf --out images/edl/prog_firehose_fgdemo.elf --name fgdemo >/dev/null
# The phones' Sahara identity (MSM HW ID 0x001b80e100000000, OEM PK hash the SHA-256 of
# 'flashgate simulated OEM root key') is in templates/fgdemo.yaml.
# label first_sector sectors file
PARTS="boot_a 256 24576 boot.img
boot_b 24832 24576 boot.img
vbmeta_a 110848 16 vbmeta.img
vbmeta_b 111104 16 vbmeta.img
system_a 111872 1048576 system.img
system_b 1160448 1048576 system.img"

make_rawprogram() {
  local region=$1 out=$2
  {
    echo '<?xml version="1.0" ?>'
    echo '<data>'
    echo "  <!-- flashgate demo package for region $region (UFS, LUN 0) -->"
    echo "$PARTS" | while read -r label first sectors file; do
      local sparse=false
      if [ "$file" = system.img ] && [ "${SPARSE[$region]}" = yes ]; then sparse=true; fi
      printf '  <program SECTOR_SIZE_IN_BYTES="4096" file_sector_offset="0" filename="%s" label="%s" num_partition_sectors="%s" partofsingleimage="false" physical_partition_number="0" readbackverify="false" size_in_KB="%s.0" sparse="%s" start_byte_hex="0x%x" start_sector="%s"/>\n' \
        "$file" "$label" "$sectors" $((sectors * 4)) "$sparse" $((first * 4096)) "$first"
    done
    echo '</data>'
  } >"$out"
}

make_patch() {
  {
    echo '<?xml version="1.0" ?>'
    echo '<patches>'
    echo '  <!-- The simulated phones ship with their GPT: nothing to patch. -->'
    echo '</patches>'
  } >"$1"
}

for region in "${REGIONS[@]}"; do
  make_rawprogram "$region" "images/$region/rawprogram0.xml"
  make_patch "images/$region/patch0.xml"
done

sha() { sha256sum "$1" | cut -d' ' -f1; }

# The manifest, built from the release folder (images/<region>/) by flashgate as a release
# engineer would: the template (templates/fgdemo.yaml) gives the plan, the tool reads sizes,
# hashes, the client and the build id from the images, and each region's client must be the
# one allow-listed here (the hash of the APK that region's build was made with).
allow=()
for region in "${REGIONS[@]}"; do allow+=(--allow "$region=$(sha "$work/client-$region.apk")"); done
$FLASHGATE manifest build --template templates/fgdemo.yaml --release images --image-root images \
  "${allow[@]}" --out products/fgdemo.yaml 2>/dev/null


# ---------------------------------------------------------------------------------------------
# The second demo product, fgmodern: a phone launched with Android 10 or later. Its `system`,
# `vendor` (and their _b twins) are logical partitions inside one physical `super` (LP
# metadata): `system` is erofs compressed with lz4hc and holds the activation client, `vendor`
# is ext4. The factory image is one sparse super.img, packed by `flashgate image make-super`
# (lpmake's flags) with the _a partitions filled and the _b ones empty, as AOSP's
# build_super_image.py packs an A/B device's super.img for the factory.
MODERN_REGIONS=(00WW 00EEA 00CN)
# The phone's `super` (bytes, recorded in the LP metadata: the phone's must match). Most of it is
# DONT_CARE in the sparse image, so the file stays small.
MODERN_SUPER_SIZE=$((256 << 20))
MODERN_GROUP_SIZE=$(((MODERN_SUPER_SIZE - (4 << 20)) / 2))
VENDOR_SIZE_KIB=1024
MODERN_BUILD_DATE=20251201
MODERN_CLIENT=/system/priv-app/ActivationClient/ActivationClient.apk
declare -A MODERN_UUID=(
  [00WW]=5f1b0000-0000-4000-8000-000000000001
  [00EEA]=5f1b0000-0000-4000-8000-000000000002
  [00CN]=5f1b0000-0000-4000-8000-000000000003
)
VENDOR_UUID=5f1b0000-0000-4000-8000-0000000000f0

for tool in mkfs.erofs; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "make-images.sh: $tool not found; apt-get install erofs-utils" >&2
    exit 1
  }
done

# fgmodern's client: another build of the activation client than fgdemo's.
make_modern_client() {
  local region=$1 out=$2
  {
    printf 'ActivationClient fgmodern build %s for region %s\n' "$MODERN_BUILD_DATE" "$region"
    for i in $(seq 1 1500); do
      printf 'region=%s server=https://%s/v2/activate record=%05d\n' "$region" "${SERVER[$region]}" "$i"
    done
  } >"$out"
}

# `system` as Android 10+ ships it: system-as-root (the tree's /system holds the apps), erofs
# lz4hc, owners root, one timestamp, a fixed UUID.
make_modern_system() {
  local region=$1 out=$2
  local root="$work/modern-system-$region"
  mkdir -p "$root/system/priv-app/ActivationClient" "$root/system/app/Settings" "$root/system/etc"
  make_modern_client "$region" "$root$MODERN_CLIENT"
  for i in $(seq 1 3000); do printf 'Settings fgmodern resource %05d\n' "$i"; done >"$root/system/app/Settings/Settings.apk"
  {
    echo "ro.product.name=fgmodern"
    echo "ro.build.display.id=FGMODERN.$region.$MODERN_BUILD_DATE"
    echo "ro.product.region=$region"
  } >"$root/system/build.prop"
  printf '127.0.0.1 localhost\n' >"$root/system/etc/hosts"
  rm -f "$out"
  mkfs.erofs --quiet -zlz4hc -T"$EPOCH" -U "${MODERN_UUID[$region]}" --all-root "$out" "$root" >/dev/null
}

# `vendor`: the same in every region, ext4.
make_modern_vendor() {
  local out=$1
  local tree="$work/modern-vendor"
  mkdir -p "$tree/etc" "$tree/lib64"
  printf 'ro.vendor.product.name=fgmodern\nro.vendor.build.date=%s\n' "$MODERN_BUILD_DATE" >"$tree/build.prop"
  for i in $(seq 1 2000); do printf 'fgmodern vendor HAL blob line %05d\n' "$i"; done >"$tree/lib64/libfgmodern_hal.so"
  printf '/dev/block/by-name/metadata /metadata ext4 noatime wait,formattable\n' >"$tree/etc/fstab.fgmodern"
  find "$tree" -exec touch -h -d "@$EPOCH" {} +
  rm -f "$out"
  mke2fs -q -F -t ext4 -b 4096 -N 64 -L vendor -U "$VENDOR_UUID" \
    -E "hash_seed=$VENDOR_UUID,root_owner=0:0,lazy_itable_init=0,nodiscard" \
    -O ^has_journal,^resize_inode -m 0 \
    -d "$tree" "$out" "${VENDOR_SIZE_KIB}k" >/dev/null
  (cd "$tree" && find . -mindepth 1 | sort | sed 's|^\.||') |
    while read -r path; do echo "set_inode_field $path ctime @$EPOCH"; done >"$work/ctime-vendor"
  echo "set_inode_field / ctime @$EPOCH" >>"$work/ctime-vendor"
  debugfs -w -f "$work/ctime-vendor" "$out" >/dev/null 2>&1
}

make_modern_vendor "$work/modern-vendor.img"
for region in "${MODERN_REGIONS[@]}"; do
  d="images/fgmodern/$region"
  mkdir -p "$d"
  make_modern_system "$region" "$work/modern-system-$region.img"
  $FLASHGATE image make-super --sparse \
    --device-size "$MODERN_SUPER_SIZE" --metadata-size 65536 --metadata-slots 3 \
    --group "qti_dynamic_partitions_a:$MODERN_GROUP_SIZE" \
    --group "qti_dynamic_partitions_b:$MODERN_GROUP_SIZE" \
    --partition "system_a:readonly:auto:qti_dynamic_partitions_a=$work/modern-system-$region.img" \
    --partition "vendor_a:readonly:auto:qti_dynamic_partitions_a=$work/modern-vendor.img" \
    --partition "system_b:readonly:0:qti_dynamic_partitions_b" \
    --partition "vendor_b:readonly:0:qti_dynamic_partitions_b" \
    --output "$d/super.img" >/dev/null
  make_boot "$region" "$d/boot.img" fgmodern
  make_vbmeta "$d/vbmeta.img"
  make_modern_client "$region" "$work/modern-client-$region.apk"
done

# fgmodern's EDL package: its own SoC (MSM HW ID) and programmer, the same OEM key. The
# rawprogram places each image at its partition of the simulated dynamic-partition phone's UFS
# layout with this `super` (LUN 0, 4096-byte sectors, 1 MiB alignment:
# `protocols::sim::layout::dynamic_layout`); super.img is programmed sparse, as QFIL does.
$FLASHGATE sim programmer-elf --out images/edl/prog_firehose_fgmodern.elf --name fgmodern >/dev/null
# (MSM HW ID 0x002280e100000000, in templates/fgmodern.yaml.) Its LUN 0, also in the template
# (`sizes.luns`): 501 MiB of boot chain and shared partitions before `super`, 8 GiB userdata,
# 2 MiB for the GPT (the partitions start at 1 MiB; the backup table ends the LUN), that is
# (8695 MiB + the super size) = 9385803776 bytes.
MODERN_SUPER_FIRST=128512
MODERN_PARTS="boot_a 256 24576 boot.img false
boot_b 24832 24576 boot.img false
vbmeta_a 114944 16 vbmeta.img false
vbmeta_b 115200 16 vbmeta.img false
super $MODERN_SUPER_FIRST $((MODERN_SUPER_SIZE / 4096)) super.img true"
for region in "${MODERN_REGIONS[@]}"; do
  {
    echo '<?xml version="1.0" ?>'
    echo '<data>'
    echo "  <!-- flashgate demo package for fgmodern, region $region (UFS, LUN 0) -->"
    echo "$MODERN_PARTS" | while read -r label first sectors file sparse; do
      printf '  <program SECTOR_SIZE_IN_BYTES="4096" file_sector_offset="0" filename="%s" label="%s" num_partition_sectors="%s" partofsingleimage="false" physical_partition_number="0" readbackverify="false" size_in_KB="%s.0" sparse="%s" start_byte_hex="0x%x" start_sector="%s"/>\n' \
        "$file" "$label" "$sectors" $((sectors * 4)) "$sparse" $((first * 4096)) "$first"
    done
    echo '</data>'
  } >"images/fgmodern/$region/rawprogram0.xml"
  make_patch "images/fgmodern/$region/patch0.xml"
done

# fgmodern's manifest from its release folder (images/fgmodern/<region>/), the same way.
allow=()
for region in "${MODERN_REGIONS[@]}"; do allow+=(--allow "$region=$(sha "$work/modern-client-$region.apk")"); done
$FLASHGATE manifest build --template templates/fgmodern.yaml --release images/fgmodern \
  --image-root images "${allow[@]}" --out products/fgmodern.yaml 2>/dev/null

# Sign each manifest with the demo release key (DEMO ONLY: keys/README.md), as a release signs
# its manifests. Ed25519 signatures are deterministic and the trusted comment has no timestamp,
# so the .minisig files come out the same byte for byte.
command -v minisign >/dev/null 2>&1 || {
  echo "make-images.sh: minisign not found; apt-get install minisign" >&2
  exit 1
}
for product in fgdemo fgmodern; do
  minisign -S -s keys/demo-release.key -m "products/$product.yaml" -x "products/$product.yaml.minisig" \
    -c "flashgate DEMO-ONLY signature: made with the committed demo key, never trust it in production" \
    -t "flashgate demo release of $product, signed with the DEMO-ONLY key AD7274E4FD7DC8D6" >/dev/null
done

echo "make-images.sh: wrote images/, products/fgdemo.yaml and products/fgmodern.yaml (and their .minisig)"
sha256sum images/*/*.img images/*/*.xml images/edl/*.elf images/fgmodern/*/*.img images/fgmodern/*/*.xml

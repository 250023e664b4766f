//! `docs/configuration.md` documents every key the loaders accept, and only those. The keys are
//! not listed by hand here: they are asked of the loaders themselves. Starting from the demo
//! configs, a probe key is put into each mapping; serde's refusal of it ("unknown field, expected
//! one of …") names the keys that mapping takes. Keys the demo does not use are probed the same
//! way, as a mapping and as a list of mappings, to find the sections below them. A mapping that
//! takes the probe without that refusal holds names of the user's own (regions, files).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::yaml::tree::{self, Mapping, Value};

use super::{ConfigError, ProductManifest, StationConfig, WorkOrder};

const PROBE: &str = "zz_probe";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[derive(Clone)]
enum Step {
    Key(Value),
    Index(usize),
}

fn node_mut<'v>(root: &'v mut Value, steps: &[Step]) -> &'v mut Value {
    steps.iter().fold(root, |node, step| match step {
        Step::Key(key) => node.as_mapping_mut().unwrap().get_mut(key).unwrap(),
        Step::Index(i) => &mut node.as_sequence_mut().unwrap()[*i],
    })
}

/// The keys the mapping at `steps` takes, if it is a struct (not a user-named map).
fn struct_fields(
    root: &Value,
    steps: &[Step],
    load: &dyn Fn(&str) -> Result<(), ConfigError>,
) -> Option<Vec<String>> {
    let mut probed = root.clone();
    let node = node_mut(&mut probed, steps);
    let mut with_probe = Mapping::new();
    with_probe.insert(Value::from(PROBE), Value::from(1));
    for (k, v) in node.as_mapping().unwrap() {
        with_probe.insert(k.clone(), v.clone());
    }
    *node = Value::Mapping(with_probe);
    let text = tree::to_string(&probed).unwrap();
    let Err(ConfigError::Invalid { problem, .. }) = load(&text) else {
        return None;
    };
    let rest = problem.strip_prefix(&format!("unknown field `{PROBE}`"))?;
    Some(
        rest.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

fn walk(
    root: &Value,
    steps: Vec<Step>,
    path: &str,
    load: &dyn Fn(&str) -> Result<(), ConfigError>,
    keys: &mut BTreeSet<String>,
) {
    let mut scratch = root.clone();
    match node_mut(&mut scratch, &steps).clone() {
        Value::Mapping(mapping) => {
            let Some(fields) = struct_fields(root, &steps, load) else {
                // A map of the user's names: its entries share one shape.
                for key in mapping.keys() {
                    let mut inner = steps.clone();
                    inner.push(Step::Key(key.clone()));
                    walk(root, inner, &format!("{path}.*"), load, keys);
                }
                return;
            };
            for field in fields {
                let full = if path.is_empty() {
                    field.clone()
                } else {
                    format!("{path}.{field}")
                };
                keys.insert(full.clone());
                let key = Value::from(field.as_str());
                let mut inner = steps.clone();
                inner.push(Step::Key(key.clone()));
                if mapping.contains_key(&key) {
                    walk(root, inner, &full, load, keys);
                    continue;
                }
                // Not in the demo: a section of its own, or a list of them?
                for shape in [
                    Value::Mapping(Mapping::new()),
                    Value::Sequence(vec![Value::Mapping(Mapping::new())]),
                ] {
                    let mut tried = root.clone();
                    node_mut(&mut tried, &steps)
                        .as_mapping_mut()
                        .unwrap()
                        .insert(key.clone(), shape.clone());
                    let (probe_at, probe_path) = match shape {
                        Value::Sequence(_) => {
                            let mut at = inner.clone();
                            at.push(Step::Index(0));
                            (at, format!("{full}[]"))
                        }
                        _ => (inner.clone(), full.clone()),
                    };
                    if struct_fields(&tried, &probe_at, load).is_some() {
                        walk(&tried, probe_at, &probe_path, load, keys);
                        break;
                    }
                }
            }
        }
        Value::Sequence(items) => {
            for index in 0..items.len() {
                let mut inner = steps.clone();
                inner.push(Step::Index(index));
                walk(root, inner, &format!("{path}[]"), load, keys);
            }
        }
        _ => {}
    }
}

fn accepted_keys(file: &Path, load: &dyn Fn(&str) -> Result<(), ConfigError>) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    load(&text).unwrap_or_else(|e| panic!("{}: the demo must load: {e}", file.display()));
    let root: Value = tree::from_str(&text).unwrap();
    let mut keys = BTreeSet::new();
    walk(&root, Vec::new(), "", load, &mut keys);
    keys
}

/// Keys in the first column of the tables under `## <heading>` of the reference.
fn documented_keys(doc: &str, heading: &str) -> BTreeSet<String> {
    let start = doc
        .find(&format!("\n## {heading}"))
        .unwrap_or_else(|| panic!("docs/configuration.md has no section `## {heading}`"));
    let section = &doc[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 4)];
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect()
}

fn assert_documented(heading: &str, accepted: &BTreeSet<String>) {
    let doc = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    let documented = documented_keys(&doc, heading);
    let missing: Vec<_> = accepted.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(accepted).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/configuration.md `## {heading}`: undocumented keys {missing:?}; documented keys \
         the loader does not accept {stale:?}"
    );
}

#[test]
fn every_station_key_is_documented() {
    let file = repo().join("configs/demo/station.yaml");
    let keys = accepted_keys(&file, &|text| {
        StationConfig::from_bytes(&file, text.as_bytes()).map(drop)
    });
    assert!(keys.contains("limits.timeouts.command_secs"), "{keys:?}");
    assert!(keys.contains("slots[].port"), "{keys:?}");
    assert_documented("station.yaml", &keys);
}

#[test]
fn every_product_key_is_documented() {
    let demo = repo().join("configs/demo");
    let file = demo.join("products/fgdemo.yaml");
    let images = demo.join("images").canonicalize().unwrap();
    let keys = accepted_keys(&file, &|text| {
        ProductManifest::from_bytes(&file, text.as_bytes(), &images).map(drop)
    });
    // Sections the demo does not use are found too.
    assert!(
        keys.contains("regions.*.flash.fastboot.fastbootd.partitions[].image"),
        "{keys:?}"
    );
    assert!(
        keys.contains("regions.*.activation_client.raw.offset"),
        "{keys:?}"
    );
    assert!(
        keys.contains("identity.edl[].programmer.sha256"),
        "{keys:?}"
    );
    assert_documented("Product manifest", &keys);
}

#[test]
fn every_work_order_key_is_documented() {
    let file = repo().join("configs/demo/work-orders/WO-DEMO-EEA.yaml");
    let keys = accepted_keys(&file, &|text| {
        WorkOrder::from_bytes(&file, text.as_bytes()).map(drop)
    });
    assert_eq!(
        keys.iter().map(String::as_str).collect::<Vec<_>>(),
        ["id", "product", "quantity", "region"]
    );
    assert_documented("Work order", &keys);
}

#[test]
fn the_probe_finds_keys_and_tells_sections_from_named_maps() {
    let file = repo().join("configs/demo/station.yaml");
    let keys = accepted_keys(&file, &|text| {
        StationConfig::from_bytes(&file, text.as_bytes()).map(drop)
    });
    let expected = [
        "station_id",
        "image_root",
        "products_dir",
        "journal",
        "log_dir",
        "limits",
        "limits.parallel_slots",
        "limits.retries.identify",
        "slots",
        "slots[].simulated",
    ];
    for key in expected {
        assert!(keys.contains(key), "{key}: {keys:?}");
    }
    assert!(keys.iter().all(|k| !k.contains(PROBE)), "{keys:?}");
}

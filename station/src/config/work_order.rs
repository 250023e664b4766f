//! `work-orders/<id>.yaml`: what the line is building now.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{ConfigError, KeyPath};
use super::names::check_identifier;
use super::region::RegionCode;
use super::yaml::YamlDocument;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkOrder {
    pub source: PathBuf,
    pub id: String,
    pub product: String,
    pub region: RegionCode,
    pub quantity: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkOrderFile {
    id: String,
    product: String,
    region: RegionCode,
    quantity: u32,
}

impl WorkOrder {
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        Self::from_document(&YamlDocument::read(file)?)
    }

    /// The whole loader on the bytes of a file named `file`; arbitrary bytes give an error,
    /// never a panic (the config fuzzer's entry point).
    pub fn from_bytes(file: &Path, bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::from_document(&YamlDocument::from_bytes(file, bytes)?)
    }

    pub fn from_document(doc: &YamlDocument) -> Result<Self, ConfigError> {
        let raw: WorkOrderFile = doc.parse()?;
        let id_key = KeyPath::of(&["id"]);
        check_identifier(&raw.id)
            .map_err(|p| doc.error_at(&id_key, p, "copy the work order id from the ERP"))?;
        let stem = doc
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if stem != raw.id {
            return Err(doc.error_at(
                &id_key,
                format!(
                    "the file is `{stem}.yaml` but names work order `{}`",
                    raw.id
                ),
                format!("rename the file to `{}.yaml` or correct `id`", raw.id),
            ));
        }
        check_identifier(&raw.product).map_err(|p| {
            doc.error_at(
                &KeyPath::of(&["product"]),
                p,
                "write the product name of a manifest in the station's products folder",
            )
        })?;
        if raw.quantity == 0 {
            return Err(doc.error_at(
                &KeyPath::of(&["quantity"]),
                "quantity 0",
                "write how many units this work order covers",
            ));
        }
        Ok(Self {
            source: doc.file.clone(),
            id: raw.id,
            product: raw.product,
            region: raw.region,
            quantity: raw.quantity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> YamlDocument {
        YamlDocument::from_text("work-orders/WO-1187.yaml", text)
    }

    const GOOD: &str = "id: WO-1187\nproduct: fgdemo\nregion: 00EEA\nquantity: 200\n";

    #[test]
    fn loads() {
        let order = WorkOrder::from_document(&doc(GOOD)).unwrap();
        assert_eq!(order.id, "WO-1187");
        assert_eq!(order.region.as_str(), "00EEA");
        assert_eq!(order.quantity, 200);
    }

    #[test]
    fn errors_name_file_line_key() {
        let cases = [
            (
                GOOD.replace("00EEA", "00eea"),
                3,
                "region",
                "not a region code",
            ),
            (
                GOOD.replace("WO-1187", "WO-1188"),
                1,
                "id",
                "rename the file",
            ),
            (GOOD.replace("200", "0"), 4, "quantity", "quantity 0"),
            (GOOD.replace("200", "-5"), 4, "quantity", "invalid type"),
            (
                format!("{GOOD}priority: high\n"),
                5,
                "priority",
                "unknown field",
            ),
            (
                GOOD.replace("product: fgdemo\n", ""),
                1,
                "product",
                "missing field",
            ),
        ];
        for (text, line, key, words) in cases {
            let error = WorkOrder::from_document(&doc(&text)).unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with("work-orders/WO-1187.yaml:"),
                "{message}"
            );
            assert_eq!(error.line(), Some(line), "{message}");
            assert_eq!(error.key().unwrap().to_string(), key, "{message}");
            assert!(message.contains(words), "{message}");
        }
    }
}

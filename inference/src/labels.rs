//! Class names (from ONNX metadata or a sidecar file), the label → hazard map, and per-class thresholds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::InferenceError;

/// The hazards the patrol reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HazardKind {
    /// Flame or smoke.
    Fire,
    /// LPG gas cylinders where they must not be.
    Gas,
    /// Rooftop add-ons, steel-sheet sheds.
    IllegalStructure,
}

impl HazardKind {
    /// The snake_case name used in config, MQTT and CSV.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Fire => "fire",
            Self::Gas => "gas",
            Self::IllegalStructure => "illegal_structure",
        }
    }
}

/// What a model label means to the patrol: a hazard kind, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelTarget {
    /// Report as a fire hazard.
    Fire,
    /// Report as a gas hazard.
    Gas,
    /// Report as an illegal structure.
    IllegalStructure,
    /// Drop detections of this label.
    Ignore,
}

impl LabelTarget {
    /// The hazard, or `None` for [`LabelTarget::Ignore`].
    pub fn hazard(&self) -> Option<HazardKind> {
        match self {
            Self::Fire => Some(HazardKind::Fire),
            Self::Gas => Some(HazardKind::Gas),
            Self::IllegalStructure => Some(HazardKind::IllegalStructure),
            Self::Ignore => None,
        }
    }
}

/// Maps model labels to hazards. Labels that are not in the map are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HazardMap(pub BTreeMap<String, LabelTarget>);

impl Default for HazardMap {
    /// The shipped model's classes: fire and smoke → fire, gas_cylinder → gas, steel_shed and rooftop_addon →
    /// illegal_structure.
    fn default() -> Self {
        Self(
            [
                ("fire", LabelTarget::Fire),
                ("smoke", LabelTarget::Fire),
                ("gas_cylinder", LabelTarget::Gas),
                ("steel_shed", LabelTarget::IllegalStructure),
                ("rooftop_addon", LabelTarget::IllegalStructure),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        )
    }
}

impl HazardMap {
    /// The hazard for `label`, `None` when it is ignored or unknown.
    pub fn hazard(&self, label: &str) -> Option<HazardKind> {
        self.0.get(label).and_then(LabelTarget::hazard)
    }
}

/// Parses class names as Ultralytics writes them into ONNX metadata (`{0: 'fire', 1: 'smoke'}`, a Python dict
/// literal), or a JSON list/object, or plain text with one name per line.
///
/// # Errors
/// [`InferenceError::BadNames`] when the text is malformed, empty, or its indices are not `0..n`.
pub fn parse_class_names(text: &str, source_name: &str) -> Result<Vec<String>, InferenceError> {
    let bad = |detail: String| InferenceError::BadNames { source_name: source_name.to_owned(), detail };
    let trimmed = text.trim();
    let names = if let Some(body) = trimmed.strip_prefix('{') {
        let body = body.strip_suffix('}').ok_or_else(|| bad("a '{' without its closing '}'".into()))?;
        let mut indexed: BTreeMap<usize, String> = BTreeMap::new();
        for entry in split_outside_quotes(body).map_err(bad)? {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let (key, value) =
                split_key(entry).ok_or_else(|| bad(format!("entry `{entry}` is not `index: 'name'`")))?;
            let key = unquote(key.trim()).unwrap_or_else(|| key.trim().to_owned());
            let index: usize = key.parse().map_err(|_| bad(format!("index `{key}` is not a number")))?;
            let name = unquote(value.trim()).ok_or_else(|| bad(format!("name in `{entry}` is not quoted")))?;
            if indexed.insert(index, name).is_some() {
                return Err(bad(format!("index {index} appears twice")));
            }
        }
        if let Some((i, _)) = indexed.iter().enumerate().find(|(i, (k, _))| *i != **k) {
            return Err(bad(format!("indices must be 0..n without gaps; index {i} is missing")));
        }
        indexed.into_values().collect()
    } else if let Some(body) = trimmed.strip_prefix('[') {
        let body = body.strip_suffix(']').ok_or_else(|| bad("a '[' without its closing ']'".into()))?;
        let mut names = Vec::new();
        for entry in split_outside_quotes(body).map_err(bad)? {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            names.push(unquote(entry).ok_or_else(|| bad(format!("list item `{entry}` is not quoted")))?);
        }
        names
    } else {
        trimmed.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
    };
    if names.is_empty() {
        return Err(bad("no class names".into()));
    }
    Ok(names)
}

fn split_outside_quotes(body: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut start, mut quote) = (0, None);
    let mut escaped = false;
    for (i, ch) in body.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if ch == '\\' {
                    escaped = true;
                } else if ch == q {
                    quote = None;
                }
            }
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            None if ch == ',' => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            None => {}
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    parts.push(&body[start..]);
    Ok(parts)
}

fn split_key(entry: &str) -> Option<(&str, &str)> {
    // The key is a number or a quoted number: the first ':' outside quotes separates it.
    let mut quote = None;
    for (i, ch) in entry.char_indices() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            None if ch == ':' => return Some((&entry[..i], &entry[i + 1..])),
            None => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = s.strip_prefix(q)?.strip_suffix(q)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Per-class decisions derived from names, the hazard map and thresholds: what the post-processor needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassTable {
    /// Class names, indexed by class id.
    pub names: Vec<String>,
    /// Hazard for each class id (`None` = ignored).
    pub hazards: Vec<Option<HazardKind>>,
    /// Minimum score for each class id; ignored classes get `f32::INFINITY` so they are never decoded.
    pub thresholds: Vec<f32>,
}

impl ClassTable {
    /// Builds the table. `class_thresholds` overrides `default_threshold` per label.
    ///
    /// # Errors
    /// [`InferenceError::Config`] for a threshold outside 0..=1 or one that names an unknown label.
    pub fn new(
        names: Vec<String>,
        map: &HazardMap,
        default_threshold: f32,
        class_thresholds: &BTreeMap<String, f32>,
    ) -> Result<Self, InferenceError> {
        let in_range = |t: f32| (0.0..=1.0).contains(&t);
        if !in_range(default_threshold) {
            return Err(InferenceError::Config(format!("score threshold {default_threshold} is not in 0..=1")));
        }
        for (label, &t) in class_thresholds {
            if !in_range(t) {
                return Err(InferenceError::Config(format!("threshold {t} for `{label}` is not in 0..=1")));
            }
            if !names.contains(label) {
                return Err(InferenceError::Config(format!(
                    "a threshold is set for `{label}`, which the model does not have (its classes: {})",
                    names.join(", ")
                )));
            }
        }
        let hazards: Vec<Option<HazardKind>> = names.iter().map(|n| map.hazard(n)).collect();
        let thresholds = names
            .iter()
            .zip(&hazards)
            .map(|(n, h)| match h {
                Some(_) => class_thresholds.get(n).copied().unwrap_or(default_threshold),
                None => f32::INFINITY,
            })
            .collect();
        Ok(Self { names, hazards, thresholds })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ultralytics_metadata() {
        let names = parse_class_names(
            "{0: 'fire', 1: 'smoke', 2: 'gas_cylinder', 3: \"steel_shed\", 4: 'rooftop_addon'}",
            "model metadata",
        )
        .unwrap();
        assert_eq!(names, ["fire", "smoke", "gas_cylinder", "steel_shed", "rooftop_addon"]);
        // Commas and colons inside names, escaped quotes, out-of-order keys, JSON-style quoted keys.
        let names = parse_class_names(r#"{"1": 'a, b: c', "0": 'it\'s'}"#, "m").unwrap();
        assert_eq!(names, ["it's", "a, b: c"]);
    }

    #[test]
    fn parses_lists_and_lines() {
        assert_eq!(parse_class_names(r#"["fire", "smoke"]"#, "f").unwrap(), ["fire", "smoke"]);
        assert_eq!(parse_class_names("# classes\nfire\n\nsmoke\n", "f").unwrap(), ["fire", "smoke"]);
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in ["", "{}", "{0: 'a', 2: 'b'}", "{0: 'a', 0: 'b'}", "{0: fire}", "{x: 'a'}", "{0: 'a'", "['a"] {
            assert!(matches!(parse_class_names(bad, "m"), Err(InferenceError::BadNames { .. })), "{bad:?}");
        }
    }

    #[test]
    fn class_table_applies_map_and_thresholds() {
        let names = vec!["fire".to_owned(), "smoke".to_owned(), "person".to_owned(), "gas_cylinder".to_owned()];
        let overrides = BTreeMap::from([("smoke".to_owned(), 0.6)]);
        let table = ClassTable::new(names.clone(), &HazardMap::default(), 0.3, &overrides).unwrap();
        assert_eq!(table.hazards, [Some(HazardKind::Fire), Some(HazardKind::Fire), None, Some(HazardKind::Gas)]);
        assert_eq!(table.thresholds, [0.3, 0.6, f32::INFINITY, 0.3]);

        let unknown = BTreeMap::from([("dragon".to_owned(), 0.5)]);
        assert!(ClassTable::new(names.clone(), &HazardMap::default(), 0.3, &unknown).is_err());
        assert!(ClassTable::new(names, &HazardMap::default(), 1.5, &BTreeMap::new()).is_err());
    }

    #[test]
    fn hazard_map_deserialises_from_config() {
        let map: HazardMap = serde_json::from_str(r#"{"flame": "fire", "car": "ignore"}"#).unwrap();
        assert_eq!(map.hazard("flame"), Some(HazardKind::Fire));
        assert_eq!(map.hazard("car"), None);
        assert_eq!(map.hazard("unknown"), None);
    }
}

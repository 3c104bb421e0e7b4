//! Reading a training run folder back: `metrics.jsonl` of `pretrain` (a line per step, and one
//! per validation) and of `finetune` (a line per epoch), finetune's `metrics.json` (the test
//! set's metrics and confusion matrix) and the class names from its `model/config.json`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

use super::chart::Series;

/// Every numeric key of every line, as `key → x → value`, x being the line's `x_key` (a
/// later line for the same x replaces an earlier one, as a resumed run rewrites its tail).
pub type Curves = BTreeMap<String, BTreeMap<u64, f64>>;

pub fn read_curves(path: &Path, x_key: &str) -> Result<Curves> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut curves = Curves::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON object", path.display(), i + 1))?;
        let Some(obj) = v.as_object() else {
            anyhow::bail!("{}:{}: not a JSON object", path.display(), i + 1);
        };
        let Some(x) = obj.get(x_key).and_then(Value::as_u64) else {
            anyhow::bail!(
                "{}:{}: no integer `{x_key}` (is this a {} run's metrics.jsonl?)",
                path.display(),
                i + 1,
                if x_key == "step" {
                    "pretrain"
                } else {
                    "finetune"
                }
            );
        };
        for (k, val) in obj {
            if let Some(f) = val.as_f64().filter(|_| k != x_key) {
                curves.entry(k.clone()).or_default().insert(x, f);
            }
        }
    }
    Ok(curves)
}

/// One curve as a chart series named `name`; empty when the key never appears.
pub fn series(curves: &Curves, key: &str, name: &str) -> Series {
    Series::new(
        name,
        curves
            .get(key)
            .map(|c| c.iter().map(|(&x, &y)| (x as f64, y)).collect())
            .unwrap_or_default(),
    )
}

/// What `finetune` writes to metrics.json (the parts the report shows).
#[derive(Debug, Deserialize)]
pub struct FinetuneMetrics {
    pub best_epoch: u64,
    pub validation: SetMetrics,
    pub test: SetMetrics,
    pub train_examples: u64,
    pub validation_examples: u64,
    pub test_examples: u64,
}

#[derive(Debug, Deserialize)]
pub struct SetMetrics {
    pub accuracy: f64,
    pub mcc: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    pub confusion: Vec<Vec<u64>>,
}

#[derive(Debug, Deserialize)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

pub fn read_finetune_metrics(path: &Path) -> Result<FinetuneMetrics> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let m: FinetuneMetrics = serde_json::from_str(&text)
        .with_context(|| format!("{}: not finetune's metrics.json", path.display()))?;
    let n = m.test.per_class.len();
    if m.test.confusion.len() != n || m.test.confusion.iter().any(|r| r.len() != n) {
        anyhow::bail!(
            "{}: the test confusion matrix is not {n} × {n}",
            path.display()
        );
    }
    Ok(m)
}

/// The class names from `config.json`'s id2label, or "0", "1", … when it has none.
pub fn class_names(config: &Path, n: usize) -> Vec<String> {
    let id2label: BTreeMap<String, String> = std::fs::read_to_string(config)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| serde_json::from_value(v.get("id2label")?.clone()).ok())
        .unwrap_or_default();
    (0..n)
        .map(|i| {
            id2label
                .get(&i.to_string())
                .cloned()
                .unwrap_or_else(|| i.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_keep_the_last_line_per_step_and_name_a_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.jsonl");
        std::fs::write(
            &p,
            "{\"step\":1,\"loss\":5.0}\n{\"step\":2,\"loss\":4.0}\n{\"step\":2,\"loss\":3.5,\"note\":\"x\"}\n\
             {\"step\":2,\"val_loss\":4.2}\n",
        )
        .unwrap();
        let c = read_curves(&p, "step").unwrap();
        assert_eq!(c["loss"], BTreeMap::from([(1, 5.0), (2, 3.5)]));
        assert_eq!(series(&c, "val_loss", "v").points, vec![(2.0, 4.2)]);
        assert!(series(&c, "nothing", "n").points.is_empty());
        std::fs::write(&p, "{\"step\":1}\nnot json\n").unwrap();
        let e = format!("{:#}", read_curves(&p, "step").unwrap_err());
        assert!(e.contains("metrics.jsonl:2"), "{e}");
        std::fs::write(&p, "{\"epoch\":1}\n").unwrap();
        let e = format!("{:#}", read_curves(&p, "step").unwrap_err());
        assert!(e.contains("pretrain run"), "{e}");
    }
}

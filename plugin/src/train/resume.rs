//! What makes `pretrain --resume` unable to lie: the checkpoint's `trainer.json` records the
//! run's identity (every config key a resumed run must share with the uninterrupted one for
//! the same losses: the model, the data, the masking, the optimisation and its schedule) and
//! the SHA-256 of each file beside it. Resuming checks both and refuses, naming the keys that
//! changed or the file that is corrupt. Keys that only change what is reported or how fast
//! (threads, checkpoint_every, validate_every, validation_batches, output) may change.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Digest;

use super::pretrain::PretrainConfig;

/// How a run starts in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new run; refused if the folder holds one (`--overwrite` replaces it).
    Fresh,
    /// A new run over whatever the folder holds.
    Overwrite,
    /// Continue from the folder's checkpoint, which must exist.
    Resume,
    /// Continue if the folder has a checkpoint, else start (for pipelines that rerun a step).
    ResumeIfPossible,
}

impl From<bool> for Start {
    /// `true`: resume; `false`: a fresh run.
    fn from(resume: bool) -> Self {
        if resume {
            Start::Resume
        } else {
            Start::Fresh
        }
    }
}

/// `checkpoint/trainer.json`.
#[derive(Serialize, Deserialize)]
pub struct TrainerJson {
    pub step: u64,
    pub seed: u64,
    /// The run's identity ([`identity`]); absent in checkpoints of older versions.
    #[serde(default)]
    pub run: Option<Value>,
    /// SHA-256 (hex) of each file of the checkpoint folder but this one.
    #[serde(default)]
    pub sha256: BTreeMap<String, String>,
}

impl TrainerJson {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a trainer state (truncated or corrupt): the checkpoint cannot be resumed",
                path.display()
            )
        })
    }
}

/// The config keys a resumed run must share with the run it continues. FASTA files count by
/// name and size (a workflow engine stages them under new paths).
pub fn identity(c: &PretrainConfig) -> Value {
    let t = &c.training;
    let fasta: Vec<Value> = c
        .data
        .fasta
        .iter()
        .map(|p| {
            let name = p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            json!({"name": name, "bytes": std::fs::metadata(p).map(|m| m.len()).ok()})
        })
        .collect();
    json!({
        "model": c.model,
        "init_from": c.init_from.as_ref().map(|p| p.display().to_string()),
        "data": {
            "fasta": fasta,
            "validation_records": c.data.validation_records,
            "validation_fraction": c.data.validation_fraction,
            "min_contig": c.data.min_contig,
        },
        "masking": c.masking,
        "training": {
            "steps": t.steps, "batch_size": t.batch_size, "grad_accumulation": t.grad_accumulation,
            "window_tokens": t.window_tokens, "lr": f(t.lr), "warmup_steps": t.warmup_steps,
            "schedule": t.schedule, "weight_decay": f(t.weight_decay),
            "betas": [f(t.betas.0), f(t.betas.1)], "eps": f(t.eps), "clip": f(t.clip),
            "dropout": f(t.dropout), "seed": t.seed,
        },
    })
}

/// An f32 as the config wrote it (0.003, not its f64 widening 0.003000000026077032).
fn f(x: f32) -> Value {
    serde_json::from_str(&format!("{x:?}")).unwrap_or(Value::Null)
}

/// `key: value` for every leaf of a JSON tree.
fn leaves(v: &Value, key: String, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            let key = if key.is_empty() {
                k.clone()
            } else {
                format!("{key}.{k}")
            };
            leaves(v, key, out)
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| leaves(v, format!("{key}[{i}]"), out)),
        other => {
            out.insert(key, other.to_string());
        }
    }
}

/// The keys whose values differ between `then` and `now`, as "key: THEN then, NOW now".
pub fn differences(then: &Value, now: &Value) -> Vec<String> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves(then, String::new(), &mut a);
    leaves(now, String::new(), &mut b);
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |m: &BTreeMap<String, String>| m.get(k).cloned().unwrap_or("(none)".into());
            format!("{k}: {} then, {} now", show(&a), show(&b))
        })
        .collect()
}

/// SHA-256 of a file, hex.
pub fn sha256(path: &Path) -> Result<String> {
    let mut h = sha2::Sha256::new();
    crate::io_util::for_each_chunk(path, |chunk| h.update(chunk))?;
    Ok(crate::net::hex(&h.finalize()))
}

/// The checkpoint in `dir` as `trainer.json` describes it: every file's checksum, and the run's
/// identity against `c`'s. Returns the trainer state.
pub fn verify(dir: &Path, c: &PretrainConfig) -> Result<TrainerJson> {
    let tj = TrainerJson::read(&dir.join("trainer.json"))?;
    for (file, want) in &tj.sha256 {
        let path = dir.join(file);
        if &sha256(&path)? != want {
            bail!(
                "{}: corrupt: its SHA-256 differs from the one trainer.json recorded when the \
                 checkpoint was written; the checkpoint cannot be resumed",
                path.display()
            );
        }
    }
    match &tj.run {
        Some(then) => {
            let changed = differences(then, &identity(c));
            if !changed.is_empty() {
                bail!(
                    "{}: the config differs from the run being resumed, so the resumed run could \
                     not give the same losses: {}. Resume with the run's config, or start again \
                     with --overwrite",
                    dir.display(),
                    changed.join("; ")
                );
            }
        }
        None => eprintln!(
            "pretrain: {} was written by an older dnabert: its config and files cannot be checked",
            dir.display()
        ),
    }
    Ok(tj)
}

/// Whether `out` holds a run (metrics, a checkpoint, a model).
pub fn holds_a_run(out: &Path) -> bool {
    ["metrics.jsonl", "checkpoint", "checkpoint.old", "model"]
        .iter()
        .any(|f| out.join(f).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_changed_key_with_both_values() {
        let then = json!({"training": {"lr": 0.003, "betas": [0.9, 0.98]}, "model": {"k": 3}});
        let now = json!({"training": {"lr": 0.001, "betas": [0.9, 0.99]}, "model": {"k": 3}});
        assert_eq!(
            differences(&then, &now),
            [
                "training.betas[1]: 0.98 then, 0.99 now",
                "training.lr: 0.003 then, 0.001 now"
            ]
        );
        assert!(differences(&then, &then).is_empty());
    }
}

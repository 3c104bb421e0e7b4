//! Parameters to and from model folders in the Hugging Face layout, and fresh initialisation.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rand_chacha::rand_core::RngCore;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::classify::Head;
use super::data::rng_for;
use super::params::Params;
use crate::config::BertConfig;

/// Writes named f32 tensors as a safetensors file, atomically.
pub fn save_tensors(path: &Path, tensors: &[(String, Vec<usize>, &[f32])]) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, d)| d.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), b)?))
        })
        .collect::<Result<HashMap<_, _>>>()?;
    let out = safetensors::serialize(views, None)?;
    crate::io_util::write_atomic(path, &out)
}

/// Tensors by name: (shape, data).
pub type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Reads every tensor of a safetensors file as f32 (f16 and bf16 are widened, as for
/// inference: the shipped model is stored in f16).
pub fn load_tensors(path: &Path) -> Result<Tensors> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: truncated or corrupt safetensors file: {e}",
            path.display()
        )
    })?;
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            let data = crate::checkpoint::to_f32(v.dtype(), v.data())
                .with_context(|| format!("{}: tensor '{name}'", path.display()))?;
            Ok((name, (v.shape().to_vec(), data)))
        })
        .collect()
}

/// The parameters as a model folder: config.json (for `architecture`), vocab.txt, model.safetensors.
pub fn save_folder(
    dir: &Path,
    config: &BertConfig,
    k: usize,
    params: &Params,
    architecture: &str,
) -> Result<()> {
    save_folder_with(dir, &config.to_hf_json(architecture), k, params)
}

/// [`save_folder`] with a config.json of the caller's making.
fn save_folder_with(
    dir: &Path,
    config: &serde_json::Value,
    k: usize,
    params: &Params,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let json = serde_json::to_string_pretty(config)?;
    crate::io_util::write_atomic(&dir.join("config.json"), json.as_bytes())?;
    crate::io_util::write_atomic(&dir.join("vocab.txt"), crate::vocab::generate(k).as_bytes())?;
    let tensors: Vec<(String, Vec<usize>, &[f32])> = params
        .names
        .iter()
        .map(|(n, s)| (n.clone(), s.clone(), params.get(n)))
        .collect();
    save_tensors(&dir.join("model.safetensors"), &tensors)
}

/// A classifier's folder: config.json with `num_labels` and label names. With the `[CLS]` head
/// it is a `BertForSequenceClassification`; the centre-token head has no `transformers` class
/// (its `bert.*` tensors load as a `BertModel`), and is marked by `dnabert_head`.
pub fn save_classifier_folder(
    dir: &Path,
    config: &BertConfig,
    k: usize,
    params: &Params,
    labels: usize,
    head: Head,
) -> Result<()> {
    let arch = match head {
        Head::Cls => "BertForSequenceClassification",
        Head::Centre { .. } => "DnabertForCentreTokenClassification",
    };
    let mut json = config.to_hf_json(arch);
    if let Head::Centre { hidden } = head {
        json["dnabert_head"] = serde_json::json!({"type": "centre", "hidden": hidden});
    }
    let id2label: serde_json::Map<String, serde_json::Value> = (0..labels)
        .map(|i| (i.to_string(), format!("LABEL_{i}").into()))
        .collect();
    let label2id: serde_json::Map<String, serde_json::Value> = (0..labels)
        .map(|i| (format!("LABEL_{i}"), i.into()))
        .collect();
    json["id2label"] = id2label.into();
    json["label2id"] = label2id.into();
    save_folder_with(dir, &json, k, params)
}

/// Fills `params` from a model folder's checkpoint. Names are matched with or without the
/// `bert.` prefix (bare `BertModel` files have none). Tensors of the layout that the file lacks
/// are left as they are only if `may_lack` says so for that name (a new head); otherwise missing
/// or mis-shaped tensors are errors. Returns the names that were left.
pub fn load_into(
    params: &mut Params,
    file: &Path,
    may_lack: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    fill_from(params, &load_tensors(file)?, file, may_lack)
}

/// [`load_into`] from tensors already read from `file` (named in errors).
pub fn fill_from(
    params: &mut Params,
    tensors: &Tensors,
    file: &Path,
    may_lack: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let mut left = vec![];
    for (name, shape) in params.names.clone() {
        let found = tensors
            .get(&name)
            .or_else(|| name.strip_prefix("bert.").and_then(|n| tensors.get(n)));
        match found {
            Some((s, data)) if *s == shape => params.get_mut(&name).copy_from_slice(data),
            Some((s, _)) => bail!(
                "{}: tensor '{name}' has shape {s:?}, the config implies {shape:?}",
                file.display()
            ),
            None if may_lack(&name) => left.push(name),
            None => bail!("{}: missing tensor '{name}'", file.display()),
        }
    }
    Ok(left)
}

/// BERT's initialisation: weights N(0, 0.02), biases 0, LayerNorm weight 1 and bias 0, the
/// `[PAD]` row of the word embeddings 0. Only tensors whose name `select` accepts are touched.
pub fn init(params: &mut Params, seed: u64, select: impl Fn(&str) -> bool) {
    let mut rng = rng_for(seed, 99, 0);
    let mut normal = move || {
        // Box–Muller from two uniforms in (0, 1].
        let u1 = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    };
    for (name, _) in params.names.clone() {
        if !select(&name) {
            continue;
        }
        let t = params.get_mut(&name);
        if name.contains("LayerNorm") && name.ends_with(".weight") {
            t.fill(1.0);
        } else if name.ends_with(".bias") {
            t.fill(0.0);
        } else {
            t.iter_mut().for_each(|v| *v = 0.02 * normal());
        }
    }
    if select("bert.embeddings.word_embeddings.weight") {
        let h = params.names[0].1[1];
        params.get_mut("bert.embeddings.word_embeddings.weight")[..h].fill(0.0);
    }
}

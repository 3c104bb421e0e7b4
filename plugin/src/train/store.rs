//! Parameters to and from model folders in the Hugging Face layout, and fresh initialisation.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Result};
use rand_chacha::rand_core::RngCore;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

use super::params::Params;
use crate::checkpoint::{Checkpoint, RawTensor};
use crate::config::BertConfig;
use crate::folder::Description;
use crate::layout::{embeddings, mlm, Layout};
use crate::model_dir::ModelDir;
use crate::rng::Stream;

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

/// Every tensor of a safetensors file as f32, under the file's own names (a trainer state; model
/// weights go through [`crate::checkpoint`]).
pub fn load_tensors(path: &Path) -> Result<Tensors> {
    crate::checkpoint::read_safetensors(path)?
        .into_iter()
        .map(|(name, t)| match t {
            RawTensor::Float { shape, data } => Ok((name, (shape, data))),
            RawTensor::NonFloat { dtype, .. } => {
                bail!(
                    "{}: tensor '{name}' is {dtype}, not a float",
                    path.display()
                )
            }
        })
        .collect()
}

/// The parameters as a model folder: the weights as `model.safetensors` (f32, canonical names)
/// and the folder's other files as `d` describes them ([`crate::folder`]).
pub fn save_folder(
    dir: &Path,
    config: &BertConfig,
    params: &Params,
    d: &Description,
) -> Result<()> {
    debug_assert_eq!(
        params.names,
        d.layout.names(config),
        "params of another layout"
    );
    crate::folder::write(dir, config, d, params.len())?;
    let tensors: Vec<(String, Vec<usize>, &[f32])> = params
        .names
        .iter()
        .map(|(n, s)| (n.clone(), s.clone(), params.get(n)))
        .collect();
    save_tensors(&dir.join("model.safetensors"), &tensors)
}

/// The parameters of `layout` from a model folder's checkpoint. Tensors of the layout that the
/// checkpoint lacks are left zero only if `may_lack` says so for that name (a new head), and
/// returned; otherwise a missing or mis-shaped tensor is an error.
pub fn load(
    model: &ModelDir,
    layout: Layout,
    may_lack: impl Fn(&str) -> bool,
) -> Result<(Params, Vec<String>)> {
    let ck = model.checkpoint()?;
    let mut params = Params::for_layout(layout, &model.config);
    let left = fill(&mut params, &ck, &model.config, may_lack)?;
    Ok((params, left))
}

/// Fills `params` from a checkpoint; see [`load`].
pub fn fill(
    params: &mut Params,
    ck: &Checkpoint,
    config: &BertConfig,
    may_lack: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    ck.check_layers(config)?;
    if params.has(mlm::BIAS) && ck.get(mlm::DECODER).is_some() {
        bail!(
            "{}: '{}' differs from the word embeddings; an untied MLM decoder is not supported",
            ck.source.display(),
            mlm::DECODER
        );
    }
    let names = params.names.clone();
    let found = ck.select(&names, may_lack)?;
    let mut left = vec![];
    for ((name, _), t) in names.iter().zip(found) {
        match t {
            Some(t) => params.get_mut(name).copy_from_slice(&t.data),
            None => left.push(name.clone()),
        }
    }
    Ok(left)
}

/// BERT's initialisation: weights N(0, 0.02), biases 0, LayerNorm weight 1 and bias 0, the
/// `[PAD]` row of the word embeddings 0. Only tensors whose name `select` accepts are touched.
pub fn init(params: &mut Params, seed: u64, select: impl Fn(&str) -> bool) {
    let mut rng = crate::rng::rng(seed, Stream::InitWeights, 0);
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
    if select(embeddings::WORD) {
        let h = params.names[0].1[1];
        params.get_mut(embeddings::WORD)[..h].fill(0.0);
    }
}

//! Model checkpoints: the one reader that every stage and every backend loads weights through.
//!
//! A folder's weights are found as `transformers` finds them, safetensors first:
//! `model.safetensors`, `model.safetensors.index.json` (shards), `pytorch_model.bin`,
//! `pytorch_model.bin.index.json`. Tensors come out as f32 (f16, bf16 and f64 converted) under
//! the canonical names of [`crate::layout`], whatever form the file used: names with or
//! without `bert.`, TensorFlow-era `gamma`/`beta`, `position_ids` buffers (dropped), the tied
//! MLM decoder stored or not (a stored copy is checked to equal the word embeddings).

mod normalise;
pub mod pickle;
pub mod torch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use safetensors::{Dtype, SafeTensors};

use crate::config::BertConfig;
use crate::layout::{self, Layout, Named};

/// The weight files a model folder may hold, in the order they are looked for.
pub const WEIGHT_FILES: [&str; 4] = [
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
];

/// A dense row-major f32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len());
        Self { shape, data }
    }
}

/// A tensor as a file holds it: floats (converted to f32), or an integer tensor whose values
/// nothing here uses (`position_ids`).
#[derive(Debug, Clone, PartialEq)]
pub enum RawTensor {
    Float { shape: Vec<usize>, data: Vec<f32> },
    NonFloat { shape: Vec<usize>, dtype: String },
}

/// A checkpoint's tensors under canonical names.
pub struct Checkpoint {
    tensors: HashMap<String, Tensor>,
    /// Integer tensors that no layout uses, by name: (shape, dtype).
    non_float: HashMap<String, (Vec<usize>, String)>,
    /// The file read (for shards, the index), named in every error.
    pub source: PathBuf,
}

impl Checkpoint {
    /// The weight file of a folder, if it has one.
    pub fn find(dir: &Path) -> Option<PathBuf> {
        WEIGHT_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
    }

    /// A folder's checkpoint, in whichever of [`WEIGHT_FILES`] it has.
    pub fn read_folder(dir: &Path) -> Result<Self> {
        let file = Self::find(dir).ok_or_else(|| {
            anyhow!(
                "{}: no weights ({} )",
                dir.display(),
                WEIGHT_FILES.join(", ")
            )
        })?;
        Self::read_file(&file)
    }

    /// One weight file: a safetensors or `torch.save` file (told apart by content), or a
    /// shard index (`*.index.json`).
    pub fn read_file(path: &Path) -> Result<Self> {
        let raw = if path.to_string_lossy().ends_with(".index.json") {
            read_shards(path)?
        } else {
            read_weights(path)?
        };
        let (tensors, non_float) =
            normalise::canonical(raw).with_context(|| format!("{}", path.display()))?;
        // A NaN or Inf weight would flow through every stage into all-NaN outputs with exit 0.
        let mut names: Vec<&String> = tensors.keys().collect();
        names.sort();
        for name in names {
            let data = &tensors[name].data;
            let bad = data.iter().filter(|v| !v.is_finite()).count();
            if bad > 0 {
                bail!(
                    "{}: tensor {name} holds {bad} non-finite values (NaN or Inf) of {}: the \
                     checkpoint is corrupt, or the run that wrote it diverged",
                    path.display(),
                    data.len()
                );
            }
        }
        Ok(Self {
            tensors,
            non_float,
            source: path.to_owned(),
        })
    }

    /// From tensors already under canonical names (tests, conversions).
    pub fn from_tensors(tensors: HashMap<String, Tensor>, source: &Path) -> Self {
        Self {
            tensors,
            non_float: HashMap::new(),
            source: source.to_owned(),
        }
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// What the checkpoint holds besides the encoder ([`Layout::detect`]).
    pub fn layout(&self) -> Layout {
        Layout::detect(|n| self.tensors.get(n).map(|t| t.shape.clone()))
    }

    /// The tensor `name` if the checkpoint has it, checked to have `shape`.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Option<&Tensor>> {
        if let Some((s, dtype)) = self.non_float.get(name) {
            bail!(
                "{}: tensor '{name}' {s:?} is {dtype}, not a float type (f32, f16, bf16, f64)",
                self.source.display()
            );
        }
        match self.tensors.get(name) {
            Some(t) if t.shape != shape => bail!(
                "{}: tensor '{name}' has shape {:?}, but config.json implies {shape:?}",
                self.source.display(),
                t.shape
            ),
            found => Ok(found),
        }
    }

    /// [`Self::tensor`], required.
    pub fn require(&self, name: &str, shape: &[usize]) -> Result<&Tensor> {
        self.tensor(name, shape)?.ok_or_else(|| self.missing(name))
    }

    fn missing(&self, name: &str) -> anyhow::Error {
        let names = self.names();
        let sample: Vec<&str> = names.iter().take(4).copied().collect();
        anyhow!(
            "{}: missing tensor '{name}' ({} tensors in the file, e.g. {sample:?}); is this a BERT checkpoint for this config.json?",
            self.source.display(),
            names.len(),
        )
    }

    /// Checks that the checkpoint has no more layers than `config` declares (fewer are caught
    /// as missing tensors).
    pub fn check_layers(&self, config: &BertConfig) -> Result<()> {
        let extra = format!("{}.weight", layout::layer(config.num_hidden_layers).query);
        if self.tensors.contains_key(&extra) {
            bail!(
                "{}: the checkpoint has more than the {} layers config.json declares",
                self.source.display(),
                config.num_hidden_layers
            );
        }
        Ok(())
    }

    /// The tensors of `names`, each checked; a missing one is left `None` if `may_lack` says
    /// so for it (a new head), and is an error otherwise.
    pub fn select(
        &self,
        names: &[Named],
        may_lack: impl Fn(&str) -> bool,
    ) -> Result<Vec<Option<&Tensor>>> {
        names
            .iter()
            .map(|(n, shape)| match self.tensor(n, shape)? {
                Some(t) => Ok(Some(t)),
                None if may_lack(n) => Ok(None),
                None => Err(self.missing(n)),
            })
            .collect()
    }

    /// Every one of `names`, or an error naming the first one missing.
    pub fn require_all(&self, names: &[Named]) -> Result<Vec<&Tensor>> {
        names
            .iter()
            .map(|(n, shape)| self.tensor(n, shape)?.ok_or_else(|| self.missing(n)))
            .collect()
    }
}

/// A single safetensors or `torch.save` file, told apart by its first bytes.
fn read_weights(path: &Path) -> Result<Vec<(String, RawTensor)>> {
    let head = crate::io_util::head(path, 8)?;
    if torch::is_torch(&head) {
        torch::read(path)
    } else {
        read_safetensors(path)
    }
}

/// Every tensor of a safetensors file. The header is checked against the file's size by the
/// `safetensors` crate before any tensor is read.
pub fn read_safetensors(path: &Path) -> Result<Vec<(String, RawTensor)>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{}: cannot read checkpoint", path.display()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        anyhow!(
            "{}: truncated or corrupt safetensors file: {e}",
            path.display()
        )
    })?;
    st.iter()
        .map(|(name, v)| {
            let shape = v.shape().to_vec();
            let raw = match v.dtype() {
                Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64 => RawTensor::Float {
                    data: to_f32(v.dtype(), v.data())
                        .with_context(|| format!("{}: tensor '{name}'", path.display()))?,
                    shape,
                },
                other => RawTensor::NonFloat {
                    shape,
                    dtype: format!("{other:?}"),
                },
            };
            Ok((name.to_owned(), raw))
        })
        .collect()
}

/// A shard index (`*.index.json`): for each tensor, the shard — a file beside the index — that
/// holds it.
pub struct ShardIndex {
    pub weight_map: std::collections::BTreeMap<String, String>,
}

impl ShardIndex {
    pub fn read(index: &Path) -> Result<Self> {
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: std::collections::BTreeMap<String, String>,
        }
        let text = std::fs::read_to_string(index)
            .with_context(|| format!("{}: cannot read shard index", index.display()))?;
        let idx: Index = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a shard index (weight_map)", index.display()))?;
        // A shard is a file beside the index, never a path that leads elsewhere.
        if let Some(bad) = idx
            .weight_map
            .values()
            .find(|s| s.is_empty() || s.contains(['/', '\\']) || s.starts_with('.'))
        {
            bail!(
                "{}: shard '{bad}' is not a file name beside the index",
                index.display()
            );
        }
        Ok(Self {
            weight_map: idx.weight_map,
        })
    }

    /// The shard files, each once, sorted.
    pub fn shards(&self) -> Vec<&str> {
        let mut shards: Vec<&str> = self.weight_map.values().map(String::as_str).collect();
        shards.sort_unstable();
        shards.dedup();
        shards
    }
}

/// A sharded checkpoint: every shard its index names, each checked to hold what the index says.
fn read_shards(index: &Path) -> Result<Vec<(String, RawTensor)>> {
    let idx = ShardIndex::read(index)?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut out = vec![];
    for shard in idx.shards() {
        let tensors = read_weights(&dir.join(shard))?;
        for (name, file) in &idx.weight_map {
            if file == shard && !tensors.iter().any(|(n, _)| n == name) {
                bail!(
                    "{}: the index puts tensor '{name}' in {shard}, which does not hold it",
                    index.display()
                );
            }
        }
        out.extend(tensors);
    }
    Ok(out)
}

pub(crate) fn f16_to_f32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

pub(crate) fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

pub(crate) fn to_f32(dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    let halves = |f: fn(u16) -> f32| {
        bytes
            .chunks_exact(2)
            .map(|c| f(u16::from_le_bytes([c[0], c[1]])))
            .collect()
    };
    Ok(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => bytes
            .as_chunks::<8>()
            .0
            .iter()
            .map(|c| f64::from_le_bytes(*c) as f32)
            .collect(),
        Dtype::BF16 => halves(bf16_to_f32),
        Dtype::F16 => halves(f16_to_f32),
        other => {
            bail!("dtype {other:?} is not a float type this loader reads (f32, f16, bf16, f64)")
        }
    })
}

/// `weight` is (out, in), as `torch.nn.Linear` stores it.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
}

#[derive(Debug, Clone)]
pub struct Embeddings {
    pub word_embeddings: Tensor,
    pub position_embeddings: Tensor,
    pub token_type_embeddings: Tensor,
    pub layer_norm: LayerNorm,
}

#[derive(Debug, Clone)]
pub struct Layer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attention_output: Linear,
    pub attention_layer_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_layer_norm: LayerNorm,
}

/// The encoder's weights as structs, for the ONNX export.
#[derive(Debug, Clone)]
pub struct BertWeights {
    pub embeddings: Embeddings,
    pub layers: Vec<Layer>,
}

impl BertWeights {
    /// The encoder of any checkpoint (its heads, if any, are not read).
    pub fn from_checkpoint(ck: &Checkpoint, config: &BertConfig) -> Result<Self> {
        ck.check_layers(config)?;
        let names = layout::encoder(config);
        let found = ck.require_all(&names)?;
        let by_name: HashMap<&str, &Tensor> = names
            .iter()
            .zip(found)
            .map(|((n, _), t)| (n.as_str(), t))
            .collect();
        let t = |n: &str| by_name[n].clone();
        let lin = |n: &str| Linear {
            weight: t(&format!("{n}.weight")),
            bias: t(&format!("{n}.bias")),
        };
        let ln = |n: &str| LayerNorm {
            weight: t(&format!("{n}.weight")),
            bias: t(&format!("{n}.bias")),
        };
        let embeddings = Embeddings {
            word_embeddings: t(layout::embeddings::WORD),
            position_embeddings: t(layout::embeddings::POSITION),
            token_type_embeddings: t(layout::embeddings::TOKEN_TYPE),
            layer_norm: ln(layout::embeddings::LAYER_NORM),
        };
        let layers = (0..config.num_hidden_layers)
            .map(|l| {
                let n = layout::layer(l);
                Layer {
                    query: lin(&n.query),
                    key: lin(&n.key),
                    value: lin(&n.value),
                    attention_output: lin(&n.attention_output),
                    attention_layer_norm: ln(&n.attention_layer_norm),
                    intermediate: lin(&n.intermediate),
                    output: lin(&n.output),
                    output_layer_norm: ln(&n.output_layer_norm),
                }
            })
            .collect();
        Ok(Self { embeddings, layers })
    }
}

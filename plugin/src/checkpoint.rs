//! Encoder weights from `model.safetensors`, in structs that mirror the checkpoint's names.
//!
//! Accepts `BertForMaskedLM` / `BertForSequenceClassification` checkpoints (names under `bert.`)
//! and bare `BertModel` ones (no prefix, pooler present or not), in f32, f16 or bf16.

use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::{Dtype, SafeTensors};

use crate::config::BertConfig;

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

#[derive(Debug, Clone)]
pub struct BertWeights {
    pub embeddings: Embeddings,
    pub layers: Vec<Layer>,
    pub pooler: Option<Linear>,
}

/// Looks tensors up by their Hugging Face names, checking each shape against the config.
struct Names<'a> {
    tensors: SafeTensors<'a>,
    prefix: &'static str,
    file: &'a Path,
}

impl Names<'_> {
    fn has(&self, name: &str) -> bool {
        self.tensors
            .tensor(&format!("{}{name}", self.prefix))
            .is_ok()
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let view = match self.tensors.tensor(&full) {
            Ok(v) => v,
            // Checkpoints from TensorFlow-era code name LayerNorm parameters gamma/beta.
            Err(_) if name.ends_with("LayerNorm.weight") || name.ends_with("LayerNorm.bias") => {
                let alt = full
                    .replace("LayerNorm.weight", "LayerNorm.gamma")
                    .replace("LayerNorm.bias", "LayerNorm.beta");
                self.tensors.tensor(&alt).map_err(|_| self.missing(&full))?
            }
            Err(_) => return Err(self.missing(&full)),
        };
        if view.shape() != shape {
            bail!(
                "{}: tensor '{full}' has shape {:?}, but config.json implies {:?}",
                self.file.display(),
                view.shape(),
                shape
            );
        }
        let data = to_f32(view.dtype(), view.data())
            .with_context(|| format!("{}: tensor '{full}'", self.file.display()))?;
        Ok(Tensor::new(shape.to_vec(), data))
    }

    fn missing(&self, full: &str) -> anyhow::Error {
        let mut names = self.tensors.names();
        names.sort();
        let sample: Vec<&str> = names.iter().take(4).map(|s| s.as_ref()).collect();
        anyhow::anyhow!(
            "{}: missing tensor '{full}' ({} tensors in the file, e.g. {:?}); is this a BERT checkpoint for this config.json?",
            self.file.display(),
            names.len(),
            sample
        )
    }

    fn linear(&self, name: &str, out: usize, inp: usize) -> Result<Linear> {
        Ok(Linear {
            weight: self.get(&format!("{name}.weight"), &[out, inp])?,
            bias: self.get(&format!("{name}.bias"), &[out])?,
        })
    }

    fn layer_norm(&self, name: &str, n: usize) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: self.get(&format!("{name}.weight"), &[n])?,
            bias: self.get(&format!("{name}.bias"), &[n])?,
        })
    }
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
        Dtype::BF16 => halves(|h| f32::from_bits((h as u32) << 16)),
        Dtype::F16 => halves(|h| tract_onnx::prelude::f16::from_bits(h).to_f32()),
        other => bail!("dtype {other:?} is not a float type this loader reads (f32, f16, bf16)"),
    })
}

impl BertWeights {
    pub fn load(path: &Path, config: &BertConfig) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("{}: cannot read checkpoint", path.display()))?;
        Self::from_bytes(&bytes, path, config)
    }

    pub fn from_bytes(bytes: &[u8], path: &Path, config: &BertConfig) -> Result<Self> {
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: truncated or corrupt safetensors file: {e}",
                path.display()
            )
        })?;
        let prefixed = tensors.names().iter().any(|n| n.starts_with("bert."));
        let names = Names {
            tensors,
            prefix: if prefixed { "bert." } else { "" },
            file: path,
        };
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let embeddings = Embeddings {
            word_embeddings: names
                .get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position_embeddings: names.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type_embeddings: names.get(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, h],
            )?,
            layer_norm: names.layer_norm("embeddings.LayerNorm", h)?,
        };
        let layers = (0..config.num_hidden_layers)
            .map(|l| {
                let p = format!("encoder.layer.{l}");
                Ok(Layer {
                    query: names.linear(&format!("{p}.attention.self.query"), h, h)?,
                    key: names.linear(&format!("{p}.attention.self.key"), h, h)?,
                    value: names.linear(&format!("{p}.attention.self.value"), h, h)?,
                    attention_output: names.linear(&format!("{p}.attention.output.dense"), h, h)?,
                    attention_layer_norm: names
                        .layer_norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                    intermediate: names.linear(&format!("{p}.intermediate.dense"), i, h)?,
                    output: names.linear(&format!("{p}.output.dense"), h, i)?,
                    output_layer_norm: names.layer_norm(&format!("{p}.output.LayerNorm"), h)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if names.has(&format!(
            "encoder.layer.{}.attention.self.query.weight",
            config.num_hidden_layers
        )) {
            bail!(
                "{}: the checkpoint has more than the {} layers config.json declares",
                path.display(),
                config.num_hidden_layers
            );
        }
        let pooler = if names.has("pooler.dense.weight") {
            Some(names.linear("pooler.dense", h, h)?)
        } else {
            None
        };
        Ok(Self {
            embeddings,
            layers,
            pooler,
        })
    }
}

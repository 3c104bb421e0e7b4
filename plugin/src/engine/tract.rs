//! CPU inference through tract (cargo feature `onnx`, on by default).
//!
//! tract picks its matrix-product kernels from the shapes it knows: with the sequence length
//! fixed it chooses wider tiles (16x12 over 64x3 on AVX-512), about 20% faster at
//! DNABERT-base size. So the engine keeps two kinds of plan:
//! - a *specialised* plan per concrete batch shape, for the shape nearly every batch of a
//!   genome has (full windows, full batch), announced with [`Engine::specialise`];
//! - one plan with symbolic batch and sequence axes for every other shape (short records,
//!   the last batch), so odd shapes cost no new optimisation.
//!
//! Some exported graphs (PyTorch's export of recent `transformers`, whose attention mask is
//! built with shape arithmetic that tract cannot type symbolically) have no symbolic plan;
//! for those every shape is specialised, the sequence length rounded up to a multiple of
//! `SEQ_BUCKET` so that few shapes occur, keeping the most recent few plans.

use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use super::{Hidden, Infer};
use crate::tokenizer::Tokens;

/// A batch as tract's graphs take it: i64 ids and mask, `batch × seq`.
struct Int64Batch {
    batch: usize,
    seq: usize,
    ids: Vec<i64>,
    mask: Vec<i64>,
}

/// How each input of a graph is fed; names follow Hugging Face's ONNX export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    InputIds,
    AttentionMask,
    TokenTypeIds,
    PositionIds,
}

/// (batch, sequence length).
type Shape = (usize, usize);

const SEQ_BUCKET: usize = 32;
const PLANS_KEPT: usize = 4;

pub struct Engine {
    model: InferenceModel,
    symbolic: Option<Arc<TypedSimplePlan>>,
    /// Most recently used last.
    specialised: Mutex<Vec<(Shape, Arc<TypedSimplePlan>)>>,
    hot_shape: Option<Shape>,
    feeds: Vec<Feed>,
    pub hidden: usize,
    /// The model's `[PAD]` id, for the padding this engine adds itself.
    pad: i64,
}

impl Infer for Engine {
    fn hidden(&self) -> usize {
        self.hidden
    }
    fn run(&self, b: &Tokens) -> Result<Hidden> {
        Engine::run(self, b)
    }
}

/// Lets tract's matrix products use `threads` cores (it runs one otherwise). Running windows
/// in parallel, one core each, gives more throughput than this on our benchmark; it serves
/// when one window's latency matters.
pub fn set_threads(threads: usize) {
    if threads > 1 {
        tract_linalg::multithread::set_default_executor(
            tract_linalg::multithread::Executor::multithread(threads),
        );
    }
}

impl Engine {
    /// The engine for a graph whose output rows are `hidden` wide; `pad` is the model's
    /// `[PAD]` id.
    pub fn new(proto: &ModelProto, hidden: usize, pad: u32) -> Result<Self> {
        let graph = proto.graph.as_ref().context("ONNX model has no graph")?;
        let mut model = tract_onnx::onnx()
            .model_for_proto_model(proto)
            .map_err(|e| anyhow::anyhow!("cannot load the ONNX graph: {e:?}"))?;
        let batch = model.symbols.sym("B");
        let seq = model.symbols.sym("S");
        let mut feeds = vec![];
        let initializers: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<&str> = graph
            .input
            .iter()
            .map(|i| i.name.as_str())
            .filter(|n| !initializers.contains(n))
            .collect();
        for (ix, name) in inputs.iter().enumerate() {
            let feed = match *name {
                "input_ids" => Feed::InputIds,
                "attention_mask" => Feed::AttentionMask,
                "token_type_ids" => Feed::TokenTypeIds,
                "position_ids" => Feed::PositionIds,
                other => bail!("ONNX input '{other}' is not one of input_ids, attention_mask, token_type_ids, position_ids"),
            };
            feeds.push(feed);
            model
                .set_input_fact(
                    ix,
                    InferenceFact::dt_shape(i64::datum_type(), tvec![batch.to_dim(), seq.to_dim()]),
                )
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        if !feeds.contains(&Feed::InputIds) {
            bail!("ONNX graph has no 'input_ids' input");
        }
        let out_ix = graph
            .output
            .iter()
            .position(|o| o.name == "last_hidden_state")
            .unwrap_or(0);
        let out = model
            .output_outlets()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?[out_ix];
        model
            .select_output_outlets(&[out])
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let symbolic = model
            .clone()
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .ok();
        Ok(Self {
            model,
            symbolic,
            specialised: Mutex::new(vec![]),
            hot_shape: None,
            feeds,
            hidden,
            pad: pad as i64,
        })
    }

    /// Declares the batch shape most batches will have, and optimises its plan now.
    pub fn specialise(&mut self, batch: usize, seq: usize) -> Result<()> {
        self.hot_shape = Some((batch, seq));
        self.plan_for(batch, seq).map(|_| ())
    }

    /// The plan for a batch shape, and the sequence length it runs at.
    fn plan_for(&self, batch: usize, seq: usize) -> Result<(Arc<TypedSimplePlan>, usize)> {
        let seq = match &self.symbolic {
            Some(p) if self.hot_shape != Some((batch, seq)) => return Ok((p.clone(), seq)),
            Some(_) => seq,
            None => seq.div_ceil(SEQ_BUCKET) * SEQ_BUCKET,
        };
        let mut plans = self
            .specialised
            .lock()
            .map_err(|_| anyhow::anyhow!("another embed worker failed while planning"))?;
        if let Some(i) = plans.iter().position(|(shape, _)| *shape == (batch, seq)) {
            let entry = plans.remove(i);
            plans.push(entry);
        } else {
            let mut m = self.model.clone();
            for ix in 0..self.feeds.len() {
                m.set_input_fact(
                    ix,
                    InferenceFact::dt_shape(i64::datum_type(), tvec![batch, seq]),
                )
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            }
            let plan = m
                .into_optimized()
                .and_then(|m| m.into_runnable())
                .map_err(|e| {
                    anyhow::anyhow!(
                        "tract cannot optimise the graph for batch {batch} x {seq} tokens: {e:?}"
                    )
                })?;
            if plans.len() == PLANS_KEPT {
                plans.remove(0);
            }
            plans.push(((batch, seq), plan));
        }
        // The plan for this shape was just moved or pushed to the end.
        let plan = plans.last().map(|(_, p)| p.clone());
        Ok((plan.context("tract plan cache is empty")?, seq))
    }

    /// Runs a batch: its ids and mask become i64 tensors here, padded further to the
    /// sequence length of the plan that runs them.
    pub fn run(&self, t: &Tokens) -> Result<Hidden> {
        let (plan, seq) = self.plan_for(t.batch, t.seq)?;
        let widen = |v: Vec<i64>, fill: i64| -> Vec<i64> {
            if seq == t.seq {
                return v;
            }
            v.chunks(t.seq)
                .flat_map(|row| {
                    row.iter()
                        .copied()
                        .chain(std::iter::repeat_n(fill, seq - t.seq))
                })
                .collect()
        };
        let b = Int64Batch {
            batch: t.batch,
            seq,
            ids: widen(t.ids.iter().map(|&i| i as i64).collect(), self.pad),
            mask: widen(t.mask.iter().map(|&m| m as i64).collect(), 0),
        };
        let shape = [b.batch, b.seq];
        let tensor = |data: Vec<i64>| -> Result<TValue> {
            Ok(tract_ndarray::Array2::from_shape_vec(shape, data)?
                .into_tensor()
                .into())
        };
        let inputs = self
            .feeds
            .iter()
            .map(|f| match f {
                Feed::InputIds => tensor(b.ids.clone()),
                Feed::AttentionMask => tensor(b.mask.clone()),
                Feed::TokenTypeIds => tensor(vec![0; b.batch * b.seq]),
                Feed::PositionIds => tensor((0..b.batch).flat_map(|_| 0..b.seq as i64).collect()),
            })
            .collect::<Result<TVec<_>>>()?;
        let out = plan
            .run(inputs)
            .map_err(|e| anyhow::anyhow!("inference failed: {e:?}"))?;
        let view = out[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if view.shape() != [b.batch, b.seq, self.hidden] {
            bail!(
                "model output has shape {:?}, expected {:?}",
                view.shape(),
                [b.batch, b.seq, self.hidden]
            );
        }
        Ok(Hidden {
            data: view.iter().copied().collect(),
            seq,
        })
    }
}

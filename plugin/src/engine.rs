//! CPU inference through tract: the encoder graph optimised once with symbolic batch and
//! sequence axes, then run on batches of any shape.

use anyhow::{bail, Context, Result};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

/// How each input of a graph is fed; names follow Hugging Face's ONNX export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    InputIds,
    AttentionMask,
    TokenTypeIds,
    PositionIds,
}

pub struct Engine {
    plan: Arc<TypedSimplePlan>,
    feeds: Vec<Feed>,
    pub hidden: usize,
}

/// A batch of token ids, right-padded: `ids` and `mask` are `batch × seq`, row-major.
pub struct Batch {
    pub batch: usize,
    pub seq: usize,
    pub ids: Vec<i64>,
    pub mask: Vec<i64>,
}

/// Lets tract's matrix products use `threads` cores (it runs one otherwise).
pub fn set_threads(threads: usize) {
    if threads > 1 {
        tract_linalg::multithread::set_default_executor(
            tract_linalg::multithread::Executor::multithread(threads),
        );
    }
}

impl Engine {
    pub fn new(proto: &ModelProto, hidden: usize) -> Result<Self> {
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
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| anyhow::anyhow!("tract cannot optimise the graph: {e:?}"))?;
        Ok(Self {
            plan,
            feeds,
            hidden,
        })
    }

    /// Runs a batch; returns `batch × seq × hidden` floats, row-major.
    pub fn run(&self, b: &Batch) -> Result<Vec<f32>> {
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
        let out = self
            .plan
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
        Ok(view.iter().copied().collect())
    }
}

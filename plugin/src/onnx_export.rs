//! Writes the BERT encoder as an ONNX graph (opset 17) from a config and its weights.
//!
//! Inputs `input_ids` and `attention_mask` (int64, `[batch, sequence]`, both axes dynamic),
//! output `last_hidden_state` (float32, `[batch, sequence, hidden]`): the names and meaning of
//! Hugging Face's own ONNX export, so either kind of `model.onnx` runs through the same engine.
//! The graph keeps to plain ONNX ops that tract and ONNX Runtime both optimise well. Two folds
//! are done at export time, each exact up to float rounding: token type 0 is added into the
//! position table (DNABERT never uses type 1), and the 1/sqrt(head_dim) attention scale is
//! folded into the query projection.

use prost::Message;
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::checkpoint::{BertWeights, LayerNorm, Linear};
use crate::config::BertConfig;

pub const OPSET: i64 = 17;

/// `dnabert export-onnx`'s flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model folder (config.json, vocab.txt, and weights); model.onnx is written into it.
    #[arg(long)]
    pub model: std::path::PathBuf,
}

impl Args {
    /// Prints the file it wrote.
    pub fn run(self) -> anyhow::Result<()> {
        let path = crate::model_dir::ModelDir::open(&self.model)?.export_onnx()?;
        crate::cli::say(path.display())
    }
}
/// Added to attention scores at padded keys: exp() of it underflows to exactly 0 in f32.
const MASK_VALUE: f32 = -1e9;

struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    count: usize,
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, elem: DataType, dims: &[&str]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d.parse::<i64>() {
                Ok(v) => tensor_shape_proto::dimension::Value::DimValue(v),
                Err(_) => tensor_shape_proto::dimension::Value::DimParam(d.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Builder {
    fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.count += 1;
        let out = format!("{}_{}", op.to_lowercase(), self.count);
        self.node_named(op, inputs, attrs, &out);
        out
    }

    fn node_named(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>, out: &str) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.to_string()],
            name: format!("{op}_{}", self.nodes.len()),
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
    }

    fn float(&mut self, name: &str, dims: &[usize], data: Vec<f32>) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: raw,
            ..Default::default()
        });
        name.into()
    }

    fn ints(&mut self, name: &str, data: &[i64]) -> String {
        self.initializers.push(TensorProto {
            name: name.into(),
            dims: vec![data.len() as i64],
            data_type: DataType::Int64 as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.into()
    }

    /// `x @ W^T + b`, with W stored transposed so the product reads `[.., in] @ [in, out]`.
    fn linear(&mut self, x: &str, lin: &Linear, name: &str, scale: f32) -> String {
        let (out, inp) = (lin.weight.shape[0], lin.weight.shape[1]);
        let mut wt = vec![0f32; out * inp];
        // Blocked so that both sides stay in cache: a plain loop takes seconds at BERT-base size.
        const B: usize = 32;
        for o0 in (0..out).step_by(B) {
            for i0 in (0..inp).step_by(B) {
                for o in o0..(o0 + B).min(out) {
                    for i in i0..(i0 + B).min(inp) {
                        wt[i * out + o] = lin.weight.data[o * inp + i] * scale;
                    }
                }
            }
        }
        let w = self.float(&format!("{name}.weight_t"), &[inp, out], wt);
        let b = self.float(
            &format!("{name}.bias"),
            &[out],
            lin.bias.data.iter().map(|v| v * scale).collect(),
        );
        let y = self.node("MatMul", &[x, &w], vec![]);
        self.node("Add", &[&y, &b], vec![])
    }

    fn layer_norm(&mut self, x: &str, ln: &LayerNorm, name: &str, eps: f32) -> String {
        let n = ln.weight.shape[0];
        let w = self.float(&format!("{name}.weight"), &[n], ln.weight.data.clone());
        let b = self.float(&format!("{name}.bias"), &[n], ln.bias.data.clone());
        self.node(
            "LayerNormalization",
            &[x, &w, &b],
            vec![attr_int("axis", -1), attr_float("epsilon", eps)],
        )
    }

    fn gelu(&mut self, x: &str) -> String {
        // Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)), as BERT's "gelu".
        let inv_sqrt2 = self.float(
            "const.inv_sqrt2",
            &[],
            vec![std::f32::consts::FRAC_1_SQRT_2],
        );
        let half = self.float("const.half", &[], vec![0.5]);
        let one = self.float("const.one", &[], vec![1.0]);
        let scaled = self.node("Mul", &[x, &inv_sqrt2], vec![]);
        let erf = self.node("Erf", &[&scaled], vec![]);
        let plus = self.node("Add", &[&erf, &one], vec![]);
        let halfx = self.node("Mul", &[x, &half], vec![]);
        self.node("Mul", &[&halfx, &plus], vec![])
    }
}

fn dedup_consts(initializers: Vec<TensorProto>) -> Vec<TensorProto> {
    let mut seen = std::collections::HashSet::new();
    initializers
        .into_iter()
        .filter(|t| seen.insert(t.name.clone()))
        .collect()
}

/// The encoder as an ONNX model.
pub fn build(config: &BertConfig, w: &BertWeights) -> ModelProto {
    let (h, heads, dh) = (
        config.hidden_size,
        config.num_attention_heads as i64,
        config.head_dim() as i64,
    );
    let eps = config.layer_norm_eps as f32;
    let mut b = Builder {
        nodes: vec![],
        initializers: vec![],
        count: 0,
    };

    // Embeddings: word + (position + token type 0), then LayerNorm.
    let e = &w.embeddings;
    let word = b.float(
        "embeddings.word_embeddings.weight",
        &e.word_embeddings.shape,
        e.word_embeddings.data.clone(),
    );
    let type0 = &e.token_type_embeddings.data[..h];
    let pos_data: Vec<f32> = e
        .position_embeddings
        .data
        .iter()
        .enumerate()
        .map(|(i, p)| p + type0[i % h])
        .collect();
    let pos = b.float(
        "embeddings.position_plus_type0",
        &e.position_embeddings.shape,
        pos_data,
    );
    let words = b.node("Gather", &[&word, "input_ids"], vec![attr_int("axis", 0)]);
    let shape = b.node("Shape", &["input_ids"], vec![]);
    let one = b.ints("const.i1", &[1]);
    let two = b.ints("const.i2", &[2]);
    let zero = b.ints("const.i0", &[0]);
    let seq_len = b.node("Slice", &[&shape, &one, &two, &zero], vec![]);
    let positions = b.node("Slice", &[&pos, &zero, &seq_len, &zero], vec![]);
    let summed = b.node("Add", &[&words, &positions], vec![]);
    let mut x = b.layer_norm(&summed, &e.layer_norm, "embeddings.LayerNorm", eps);

    // Additive mask [batch, 1, 1, sequence]: 0 where attended, MASK_VALUE at padding.
    let maskf = b.node(
        "Cast",
        &["attention_mask"],
        vec![attr_int("to", DataType::Float as i64)],
    );
    let onef = b.float("const.one", &[], vec![1.0]);
    let inverted = b.node("Sub", &[&onef, &maskf], vec![]);
    let big = b.float("const.mask_value", &[], vec![MASK_VALUE]);
    let additive = b.node("Mul", &[&inverted, &big], vec![]);
    let axes12 = b.ints("const.axes12", &[1, 2]);
    let mask = b.node("Unsqueeze", &[&additive, &axes12], vec![]);

    let split_heads = b.ints("const.split_heads", &[0, 0, heads, dh]);
    let merge_heads = b.ints("const.merge_heads", &[0, 0, h as i64]);
    let scale = 1.0 / (dh as f32).sqrt();
    for (l, layer) in w.layers.iter().enumerate() {
        let p = format!("encoder.layer.{l}");
        let heads_of = |b: &mut Builder, lin: &Linear, name: &str, scale: f32, perm: &[i64]| {
            let y = b.linear(&x, lin, &format!("{p}.attention.self.{name}"), scale);
            let r = b.node("Reshape", &[&y, &split_heads], vec![]);
            b.node("Transpose", &[&r], vec![attr_ints("perm", perm)])
        };
        let q = heads_of(&mut b, &layer.query, "query", scale, &[0, 2, 1, 3]);
        let k = heads_of(&mut b, &layer.key, "key", 1.0, &[0, 2, 3, 1]);
        let v = heads_of(&mut b, &layer.value, "value", 1.0, &[0, 2, 1, 3]);
        let scores = b.node("MatMul", &[&q, &k], vec![]);
        let masked = b.node("Add", &[&scores, &mask], vec![]);
        let probs = b.node("Softmax", &[&masked], vec![attr_int("axis", -1)]);
        let ctx = b.node("MatMul", &[&probs, &v], vec![]);
        let ctx = b.node("Transpose", &[&ctx], vec![attr_ints("perm", &[0, 2, 1, 3])]);
        let ctx = b.node("Reshape", &[&ctx, &merge_heads], vec![]);
        let attn = b.linear(
            &ctx,
            &layer.attention_output,
            &format!("{p}.attention.output.dense"),
            1.0,
        );
        let res = b.node("Add", &[&attn, &x], vec![]);
        let x1 = b.layer_norm(
            &res,
            &layer.attention_layer_norm,
            &format!("{p}.attention.output.LayerNorm"),
            eps,
        );
        let inter = b.linear(
            &x1,
            &layer.intermediate,
            &format!("{p}.intermediate.dense"),
            1.0,
        );
        let act = b.gelu(&inter);
        let out = b.linear(&act, &layer.output, &format!("{p}.output.dense"), 1.0);
        let res = b.node("Add", &[&out, &x1], vec![]);
        x = b.layer_norm(
            &res,
            &layer.output_layer_norm,
            &format!("{p}.output.LayerNorm"),
            eps,
        );
    }
    b.node_named("Identity", &[&x], vec![], "last_hidden_state");

    let graph = GraphProto {
        name: "dnabert_encoder".into(),
        node: b.nodes,
        initializer: dedup_consts(b.initializers),
        input: vec![
            value_info("input_ids", DataType::Int64, &["batch", "sequence"]),
            value_info("attention_mask", DataType::Int64, &["batch", "sequence"]),
        ],
        output: vec![value_info(
            "last_hidden_state",
            DataType::Float,
            &["batch", "sequence", &h.to_string()],
        )],
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "dnabert".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        ..Default::default()
    }
}

pub fn to_bytes(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

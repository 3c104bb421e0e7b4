//! What a model folder holds besides its weights, written so that the Python world opens it
//! without surprises: `config.json` (the architecture, real label names), `vocab.txt`,
//! `tokenizer_config.json` (DNABERT's k-mers are upper case: `do_lower_case` must be false, or
//! `AutoTokenizer` lower-cases every k-mer into `[UNK]`; `model_max_length`, the longest input
//! the model was trained on), `special_tokens_map.json`, a model card `README.md` with Hub
//! metadata, and for the centre-token head, which `transformers` has no class for,
//! `modeling_dnabert.py` named in `auto_map` (loaded with `trust_remote_code=True`).

use std::path::Path;

use anyhow::{Context, Result};

use crate::config::BertConfig;
use crate::io_util::write_atomic;
use crate::layout::{Head, Layout};

pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
pub const SPECIAL_TOKENS_MAP: &str = "special_tokens_map.json";
pub const CARD: &str = "README.md";
pub const CENTRE_HEAD_CODE: &str = "modeling_dnabert.py";

/// The Python of the centre-token head, for `AutoModelForSequenceClassification` with
/// `trust_remote_code=True`.
const CENTRE_HEAD_PY: &str = include_str!("folder/modeling_dnabert.py");

/// Everything a folder says about its model that the weights do not.
#[derive(Debug, Clone)]
pub struct Description {
    pub layout: Layout,
    pub k: usize,
    /// The longest input, in tokens with `[CLS]` and `[SEP]`, the model was trained on.
    pub model_max_length: usize,
    /// Class names, in class order; empty: `LABEL_0` … as `transformers` names them.
    pub labels: Vec<String>,
    /// The model card's title and description (Markdown), and its facts, row by row.
    pub title: String,
    pub summary: String,
    pub facts: Vec<(String, String)>,
    /// The model it started from, if any (a Hub id goes into the card's metadata).
    pub base_model: Option<String>,
}

impl Description {
    /// A folder described by its layout alone: a plain card, unnamed classes.
    pub fn minimal(layout: Layout, k: usize, model_max_length: usize) -> Self {
        Self {
            layout,
            k,
            model_max_length,
            labels: vec![],
            title: "A DNABERT model".into(),
            summary: "Written by dnabert.".into(),
            facts: vec![],
            base_model: None,
        }
    }
}

/// `config.json` for a layout: Hugging Face's `BertConfig`, its architecture, and for a
/// classifier `num_labels` with names (`id2label`/`label2id`).
pub fn config_json(config: &BertConfig, d: &Description) -> serde_json::Value {
    let architecture = match d.layout {
        Layout::Encoder => "BertModel",
        Layout::Mlm => "BertForMaskedLM",
        Layout::Classifier { head, .. } => head.architecture(),
    };
    let mut json = config.to_hf_json(architecture);
    if let Layout::Classifier { labels, head } = d.layout {
        let names = label_names(&d.labels, labels);
        json["id2label"] = names
            .iter()
            .enumerate()
            .map(|(i, n)| (i.to_string(), serde_json::Value::from(n.as_str())))
            .collect::<serde_json::Map<_, _>>()
            .into();
        json["label2id"] = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), serde_json::Value::from(i)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        if let Head::Centre { hidden } = head {
            json["dnabert_head"] = serde_json::json!({"type": "centre", "hidden": hidden});
            json["auto_map"] = serde_json::json!({
                "AutoModelForSequenceClassification":
                    "modeling_dnabert.DnabertForCentreTokenClassification"
            });
        }
    }
    json
}

/// The class names: the given ones, or `LABEL_i`.
pub fn label_names(given: &[String], n: usize) -> Vec<String> {
    if given.len() == n {
        given.to_vec()
    } else {
        (0..n).map(|i| format!("LABEL_{i}")).collect()
    }
}

const SPECIALS: [(&str, &str); 5] = [
    ("unk_token", "[UNK]"),
    ("sep_token", "[SEP]"),
    ("pad_token", "[PAD]"),
    ("cls_token", "[CLS]"),
    ("mask_token", "[MASK]"),
];

pub fn tokenizer_config(model_max_length: usize) -> serde_json::Value {
    let mut v = serde_json::json!({
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": false,
        "do_basic_tokenize": true,
        "strip_accents": false,
        "tokenize_chinese_chars": false,
        "clean_up_tokenization_spaces": false,
        "model_max_length": model_max_length,
        "padding_side": "right",
    });
    for (k, t) in SPECIALS {
        v[k] = t.into();
    }
    v
}

pub fn special_tokens_map() -> serde_json::Value {
    SPECIALS
        .iter()
        .map(|(k, t)| (k.to_string(), serde_json::Value::from(*t)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The model card: Hub metadata (YAML front matter), then what the model is and how it was
/// made.
pub fn card(config: &BertConfig, d: &Description, parameters: usize) -> String {
    let pipeline = match d.layout {
        Layout::Mlm => "fill-mask",
        Layout::Encoder => "feature-extraction",
        Layout::Classifier { .. } => "text-classification",
    };
    let mut s = String::from("---\nlibrary_name: transformers\npipeline_tag: ");
    s.push_str(pipeline);
    s.push_str("\ntags:\n- dnabert\n- dna\n- genomics\n");
    s.push_str(&format!("- k-mer-{}\n", d.k));
    if let Some(base) = d
        .base_model
        .as_deref()
        .filter(|b| crate::hub::is_repo_id(b))
    {
        s.push_str(&format!("base_model: {base}\n"));
    }
    s.push_str("---\n\n");
    s.push_str(&format!("# {}\n\n{}\n\n", d.title, d.summary.trim()));
    let mut rows = vec![
        (
            "architecture".to_string(),
            format!(
                "BERT, {} layers × {} hidden, {} heads, FFN {}, {} positions, {}",
                config.num_hidden_layers,
                config.hidden_size,
                config.num_attention_heads,
                config.intermediate_size,
                config.max_position_embeddings,
                if parameters < 1_000_000 {
                    format!("{parameters} parameters")
                } else {
                    format!("{:.2} M parameters", parameters as f64 / 1e6)
                }
            ),
        ),
        (
            "tokens".to_string(),
            format!(
                "overlapping {}-mers, `[CLS] … [SEP]`, up to {} k-mers per window (`model_max_length` {})",
                d.k,
                d.model_max_length.saturating_sub(2),
                d.model_max_length
            ),
        ),
    ];
    if let Layout::Classifier { labels, head } = d.layout {
        let names = label_names(&d.labels, labels);
        let head = match head {
            Head::Cls => "`[CLS]` → pooler → classifier (`BertForSequenceClassification`)".into(),
            Head::Centre { hidden } => format!(
                "the centre token → dense {hidden} + ReLU → classifier (`{}`, in `{CENTRE_HEAD_CODE}`)",
                head.architecture()
            ),
        };
        rows.push(("head".into(), head));
        rows.push(("classes".into(), names.join(", ")));
    }
    if let Some(base) = &d.base_model {
        rows.push(("started from".into(), format!("`{base}`")));
    }
    rows.extend(d.facts.iter().cloned());
    s.push_str("| | |\n|---|---|\n");
    for (k, v) in rows {
        s.push_str(&format!("| {k} | {} |\n", v.replace('|', "\\|")));
    }
    s.push_str("\n## Use\n\n```sh\n");
    match d.layout {
        Layout::Classifier { .. } => {
            s.push_str("dnabert predict --model DIR --input seqs.fa --output predictions.tsv\n")
        }
        _ => s.push_str("dnabert embed --model DIR --input genome.fa.gz --output out/genome\n"),
    }
    s.push_str("```\n\n```python\nfrom transformers import AutoTokenizer, ");
    let (class, extra) = match d.layout {
        Layout::Classifier {
            head: Head::Centre { .. },
            ..
        } => (
            "AutoModelForSequenceClassification",
            ", trust_remote_code=True",
        ),
        Layout::Classifier { .. } => ("AutoModelForSequenceClassification", ""),
        Layout::Mlm => ("AutoModelForMaskedLM", ""),
        Layout::Encoder => ("AutoModel", ""),
    };
    s.push_str(&format!(
        "{class}\ntokenizer = AutoTokenizer.from_pretrained(DIR)\nmodel = {class}.from_pretrained(DIR{extra})\n"
    ));
    s.push_str(&format!(
        "# DNABERT reads upper-case overlapping k-mers separated by spaces:\nseq = \"ACGTACGTAC\"\ninputs = tokenizer(\" \".join(seq[i:i + {k}] for i in range(len(seq) - {k} + 1)), return_tensors=\"pt\")\n```\n",
        k = d.k
    ));
    s.push_str(&format!(
        "\nWritten by `dnabert` {}.\n",
        env!("CARGO_PKG_VERSION")
    ));
    s
}

/// Writes every file of the folder but the weights, each atomically.
pub fn write(dir: &Path, config: &BertConfig, d: &Description, parameters: usize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let json = |v: &serde_json::Value| format!("{v:#}\n");
    write_atomic(
        &dir.join("config.json"),
        json(&config_json(config, d)).as_bytes(),
    )?;
    write_atomic(
        &dir.join("vocab.txt"),
        crate::vocab::generate(d.k).as_bytes(),
    )?;
    write_atomic(
        &dir.join(TOKENIZER_CONFIG),
        json(&tokenizer_config(d.model_max_length)).as_bytes(),
    )?;
    write_atomic(
        &dir.join(SPECIAL_TOKENS_MAP),
        json(&special_tokens_map()).as_bytes(),
    )?;
    write_atomic(&dir.join(CARD), card(config, d, parameters).as_bytes())?;
    let centre_code = dir.join(CENTRE_HEAD_CODE);
    match d.layout {
        Layout::Classifier {
            head: Head::Centre { .. },
            ..
        } => write_atomic(&centre_code, CENTRE_HEAD_PY.as_bytes())?,
        // A folder rewritten with another head must not keep the old head's code.
        _ if centre_code.exists() => std::fs::remove_file(&centre_code)
            .with_context(|| format!("{}: cannot remove", centre_code.display()))?,
        _ => {}
    }
    Ok(())
}

/// The `model_max_length` of a folder's `tokenizer_config.json`, if it states a usable one
/// (`transformers` writes 10^30 for "unset").
pub fn model_max_length(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join(TOKENIZER_CONFIG);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    Ok(v.get("model_max_length")
        .and_then(|m| m.as_f64())
        .filter(|m| (3.0..1e9).contains(m))
        .map(|m| m as usize))
}

/// The class names of a classifier folder's `config.json` (`id2label`), in class order, if it
/// names them all.
pub fn labels(config_json: &serde_json::Value, n: usize) -> Vec<String> {
    let Some(map) = config_json.get("id2label").and_then(|m| m.as_object()) else {
        return vec![];
    };
    let names: Option<Vec<String>> = (0..n)
        .map(|i| {
            map.get(&i.to_string())
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect();
    names.unwrap_or_default()
}

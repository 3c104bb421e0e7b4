//! `dnabert init`: a fresh model folder (weights drawn N(0, 0.02), as BERT does) from a YAML
//! model shape — the keys of pretraining's `model:` section — and an optional `seed`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::params::Params;
use super::pretrain::ModelShape;
use super::store;
use crate::folder::Description;
use crate::layout::Layout;

/// `dnabert init`'s flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// YAML: k, layers, hidden, heads, intermediate, max_positions (default 512), and seed
    /// (default 0); `dnabert config-reference init` describes each.
    #[arg(long)]
    pub config: PathBuf,
    /// The model folder to write.
    #[arg(long)]
    pub output: PathBuf,
}

impl Args {
    /// Prints the folder it wrote.
    pub fn run(self) -> Result<()> {
        init(&self.config, &self.output)?;
        crate::cli::say(self.output.display())
    }
}

/// The shape and the seed of an init config: `seed` beside pretraining's own model keys (so
/// the shape, its defaults and its checks have one definition, [`ModelShape`]).
pub fn read_config(path: &Path) -> Result<(ModelShape, u64)> {
    let (mut yaml, _): (serde_yaml::Mapping, _) = super::load_yaml(path)?;
    let seed = match yaml.remove("seed") {
        Some(v) => serde_yaml::from_value(v)
            .map_err(|e| anyhow::anyhow!("{}: seed: {e}", path.display()))?,
        None => 0,
    };
    let shape = serde_yaml::from_value(serde_yaml::Value::Mapping(yaml))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((shape, seed))
}

pub fn init(config: &Path, output: &Path) -> Result<()> {
    let (shape, seed) = read_config(config)?;
    let bert = shape.bert_config()?;
    let mut params = Params::bert_mlm(&bert);
    store::init(&mut params, seed, |_| true);
    let description = Description {
        layout: Layout::Mlm,
        k: shape.k,
        model_max_length: bert.max_position_embeddings,
        labels: vec![],
        title: "A DNABERT with random weights, made by dnabert init".into(),
        summary: "Weights drawn N(0, 0.02) as BERT initialises them: never trained. The start of \
                  `dnabert pretrain`, or a from-scratch baseline for fine-tuning."
            .into(),
        facts: vec![("seed".into(), seed.to_string())],
        base_model: None,
    };
    store::save_folder(output, &bert, &params, &description)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_is_pretraining_s_and_the_seed_optional() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.yaml");
        std::fs::write(
            &p,
            "k: 3\nlayers: 1\nhidden: 8\nheads: 2\nintermediate: 16\nseed: 4\n",
        )
        .unwrap();
        let (shape, seed) = read_config(&p).unwrap();
        assert_eq!((shape.k, shape.max_positions, seed), (3, 512, 4));
        std::fs::write(
            &p,
            "k: 3\nlayers: 1\nhidden: 8\nheads: 2\nintermediate: 16\nlayres: 2\n",
        )
        .unwrap();
        let err = read_config(&p).err().unwrap().to_string();
        assert!(err.contains("layres"), "{err}");
    }
}

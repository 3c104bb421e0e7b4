//! `dnabert config-reference`: every key of the YAML configs, with its type, default and
//! meaning, generated from the config structs themselves (their JSON schema, doc comments
//! included), so the reference cannot drift from what the loaders accept. The README's
//! reference section is this output (checked by a test).

use anyhow::Result;
use serde_json::Value;

/// Which config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// `dnabert pretrain --config`.
    Pretrain,
    /// `dnabert finetune --config`.
    Finetune,
    /// `dnabert init --config`.
    Init,
}

/// `dnabert config-reference`'s flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config to describe [default: all three].
    #[arg(value_enum)]
    pub kind: Option<Kind>,
}

impl Args {
    /// Prints the reference as Markdown tables.
    pub fn run(self) -> Result<()> {
        let kinds = match self.kind {
            Some(k) => vec![k],
            None => vec![Kind::Pretrain, Kind::Finetune, Kind::Init],
        };
        let text: Vec<String> = kinds.into_iter().map(markdown).collect();
        crate::cli::say(text.join("\n").trim_end())
    }
}

/// One config's reference: a heading, then a table of its keys (nested sections dotted).
pub fn markdown(kind: Kind) -> String {
    use crate::train::{finetune::FinetuneConfig, pretrain};
    let (title, schema) = match kind {
        Kind::Pretrain => (
            "`dnabert pretrain --config`",
            schemars::schema_for!(pretrain::PretrainConfig),
        ),
        Kind::Finetune => (
            "`dnabert finetune --config`",
            schemars::schema_for!(FinetuneConfig),
        ),
        Kind::Init => (
            "`dnabert init --config`",
            schemars::schema_for!(pretrain::ModelShape),
        ),
    };
    let root = schema.as_value();
    let mut rows = vec![];
    walk(root, root, "", &mut rows);
    if kind == Kind::Init {
        // `seed` sits beside the shape's keys (train::init::read_config takes it out).
        rows.push(Row {
            key: "seed".into(),
            kind: "integer".into(),
            default: "`0`".into(),
            meaning: "Seeds the weights.".into(),
        });
    }
    let mut s = format!("### {title}\n\n");
    if let Some(d) = root.get("description").and_then(Value::as_str) {
        s.push_str(&format!("{}\n\n", one_line(d)));
    }
    s.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.key, r.kind, r.default, r.meaning
        ));
    }
    s
}

struct Row {
    key: String,
    kind: String,
    default: String,
    meaning: String,
}

fn one_line(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// A default as YAML would write it; f32 defaults (the schema widens them to f64) rounded back.
fn value(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_f64() => format!("{}", n.as_f64().unwrap_or(0.0) as f32),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(value).collect::<Vec<_>>().join(", ")
        ),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The schema a `$ref` points to (in `$defs`), or the schema itself.
fn deref<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root["$defs"].get(name))
            .unwrap_or(s),
        None => s,
    }
}

/// The object schema a property holds, directly, by `$ref`, or as `Option<…>` (`anyOf` with
/// null).
fn object_of<'a>(root: &'a Value, s: &'a Value) -> Option<&'a Value> {
    let d = deref(root, s);
    if d.get("properties").is_some() {
        return Some(d);
    }
    d.get("anyOf")?
        .as_array()?
        .iter()
        .map(|a| deref(root, a))
        .find(|a| a.get("properties").is_some())
}

fn walk(root: &Value, obj: &Value, prefix: &str, rows: &mut Vec<Row>) {
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = obj.get("properties").and_then(Value::as_object) else {
        return;
    };
    // Plain keys first, then each section's.
    let (sections, plain): (Vec<_>, Vec<_>) = props
        .iter()
        .partition(|(_, p)| object_of(root, p).is_some());
    for (name, p) in plain {
        let d = deref(root, p);
        let meaning = p
            .get("description")
            .or_else(|| d.get("description"))
            .and_then(Value::as_str)
            .map(one_line)
            .unwrap_or_default();
        let default = match p.get("default") {
            Some(Value::String(s)) if s.is_empty() => "none".to_string(),
            Some(Value::Null) => "none".to_string(),
            Some(v) => format!("`{}`", value(v)),
            None if required.contains(&name.as_str()) => "**required**".to_string(),
            None => "none".to_string(),
        };
        rows.push(Row {
            key: format!("{prefix}{name}"),
            kind: type_of(root, p),
            default,
            meaning,
        });
    }
    for (name, p) in sections {
        let Some(inner) = object_of(root, p) else {
            continue;
        };
        let key = format!("{prefix}{name}");
        let meaning = p
            .get("description")
            .or_else(|| inner.get("description"))
            .and_then(Value::as_str)
            .map(one_line)
            .unwrap_or_default();
        let need = if required.contains(&name.as_str()) {
            "**required**"
        } else {
            "none"
        };
        rows.push(Row {
            key: key.clone(),
            kind: "section".into(),
            default: need.into(),
            meaning,
        });
        walk(root, inner, &format!("{key}."), rows);
    }
}

/// A property's type in a few words: `integer`, `number`, `string`, `path list`, an enum's
/// values, `optional …`.
fn type_of(root: &Value, p: &Value) -> String {
    let d = deref(root, p);
    if let Some(variants) = d.get("oneOf").or_else(|| d.get("enum")) {
        let values: Vec<String> = variants
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.get("const").or(Some(v)).and_then(Value::as_str))
            .map(|v| format!("`{v}`"))
            .collect();
        return values.join(" \\| ");
    }
    let types: Vec<&str> = match d.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let optional = types.contains(&"null");
    let base = types
        .iter()
        .find(|t| **t != "null")
        .copied()
        .unwrap_or("any");
    let base = match base {
        "array" => match (d.get("prefixItems"), d.get("items")) {
            (Some(Value::Array(items)), _) => {
                let kinds: Vec<String> = items.iter().map(|i| type_of(root, i)).collect();
                format!("[{}]", kinds.join(", "))
            }
            (_, Some(i)) => format!("list of {}", type_of(root, i)),
            _ => "list".into(),
        },
        other => other.to_string(),
    };
    if optional {
        format!("{base} (optional)")
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_s_reference_is_this_output() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let (_, rest) = readme
            .split_once("<!-- config-reference:begin -->\n")
            .unwrap();
        let (section, _) = rest.split_once("\n<!-- config-reference:end -->").unwrap();
        let generated: Vec<String> = [Kind::Pretrain, Kind::Finetune, Kind::Init]
            .into_iter()
            .map(markdown)
            .collect();
        assert_eq!(
            section,
            generated.join("\n").trim_end(),
            "README.md's config reference is stale: paste `dnabert config-reference` between its markers"
        );
    }

    #[test]
    fn every_key_of_every_config_is_listed_with_its_meaning() {
        let p = markdown(Kind::Pretrain);
        for key in [
            "`training.threads`",
            "`training.steps`",
            "`masking.style`",
            "`data.fasta`",
            "`model.k`",
            "`init_from`",
        ] {
            assert!(p.contains(key), "{key} missing:\n{p}");
        }
        assert!(p.contains("all cores"), "no machine-dependent default: {p}");
        let f = markdown(Kind::Finetune);
        assert!(
            f.contains("`labels`") && f.contains("`cls` \\| `centre`"),
            "{f}"
        );
        for table in [p, f, markdown(Kind::Init)] {
            for line in table.lines().filter(|l| l.starts_with("| `")) {
                let meaning = line.rsplit('|').nth(1).unwrap().trim();
                assert!(!meaning.is_empty(), "a key without meaning: {line}");
            }
        }
    }
}

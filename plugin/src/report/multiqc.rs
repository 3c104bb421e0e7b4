//! MultiQC custom content: `*_mqc.json` files that a MultiQC step in a pipeline finds by name
//! and plots itself (interactive, beside every other tool's QC). One file per section; the
//! format is MultiQC's "custom content" (id, section_name, plot_type, pconfig, data).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::chart::Series;

fn header(id: &str, section: &str, description: &str, plot_type: &str) -> Value {
    json!({
        "id": id,
        "section_name": section,
        "description": description,
        "plot_type": plot_type,
    })
}

/// Lines (one per series; series from several runs share the plot), x and y labelled.
pub fn linegraph(
    id: &str,
    section: &str,
    description: &str,
    (xlab, ylab): (&str, &str),
    series: &[Series],
) -> Value {
    let mut v = header(id, section, description, "linegraph");
    v["pconfig"] =
        json!({ "id": format!("{id}_plot"), "title": section, "xlab": xlab, "ylab": ylab });
    // Each series as {x: y} (x as text: JSON keys are strings), the form every MultiQC
    // release reads (lists of [x, y] pairs only from 1.20).
    let data: BTreeMap<&str, serde_json::Map<String, Value>> = series
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.points
                    .iter()
                    .map(|&(x, y)| (x.to_string(), json!(y)))
                    .collect(),
            )
        })
        .collect();
    v["data"] = json!(data);
    v
}

/// A table: one row per run, one column per metric.
pub fn table(
    id: &str,
    section: &str,
    description: &str,
    rows: &BTreeMap<String, BTreeMap<String, f64>>,
) -> Value {
    let mut v = header(id, section, description, "table");
    v["pconfig"] = json!({ "id": format!("{id}_table"), "title": section });
    v["data"] = json!(rows);
    v
}

/// A heatmap of `m[y][x]` (a confusion matrix: y true, x predicted).
pub fn heatmap(
    id: &str,
    section: &str,
    description: &str,
    (xcats, ycats): (&[String], &[String]),
    m: &[Vec<u64>],
) -> Value {
    let mut v = header(id, section, description, "heatmap");
    v["pconfig"] = json!({
        "id": format!("{id}_heatmap"), "title": section, "xTitle": "predicted", "yTitle": "true",
    });
    v["xcats"] = json!(xcats);
    v["ycats"] = json!(ycats);
    v["data"] = json!(m);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_content_has_the_keys_multiqc_reads() {
        let s = [Series::new("run1", vec![(1.0, 2.5), (2.0, 2.0)])];
        let v = linegraph("x_loss", "Loss", "d", ("step", "loss"), &s);
        assert_eq!(v["plot_type"], "linegraph");
        assert_eq!(v["pconfig"]["id"], "x_loss_plot");
        assert_eq!(v["data"]["run1"], json!({"1": 2.5, "2": 2.0}));
        let labels = ["a".to_string(), "b".to_string()];
        let h = heatmap("c", "C", "d", (&labels, &labels), &[vec![1, 2], vec![3, 4]]);
        assert_eq!(h["xcats"], json!(["a", "b"]));
        assert_eq!(h["data"][1][0], 3);
    }
}

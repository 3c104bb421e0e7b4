//! The report's HTML: one self-contained page (inline CSS and SVG, no scripts, no network), a
//! section per run, with a table of contents.

use std::fmt::Write;

/// Text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
p.meta { color: #666; }
nav ul { columns: 2; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; border: 1px solid #e4e4e4; }
figcaption { font-size: .85em; color: #555; padding: .3em .6em; max-width: 540px; }
table { border-collapse: collapse; margin: .8em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
td.heat { min-width: 4em; text-align: center; }
";

/// A page under construction: sections are appended in order.
pub struct Page {
    title: String,
    meta: String,
    toc: Vec<(String, String)>,
    body: String,
}

impl Page {
    pub fn new(title: &str, meta: &str) -> Self {
        Self {
            title: title.to_owned(),
            meta: meta.to_owned(),
            toc: Vec::new(),
            body: String::new(),
        }
    }

    /// Starts a section; `id` becomes its anchor (and the table of contents' link).
    pub fn section(&mut self, id: &str, heading: &str) {
        self.toc.push((id.to_owned(), heading.to_owned()));
        let _ = write!(
            self.body,
            "<section id=\"{}\">\n<h2>{}</h2>\n",
            escape(id),
            escape(heading)
        );
    }

    pub fn end_section(&mut self) {
        self.body.push_str("</section>\n");
    }

    pub fn paragraph(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p>{}</p>", escape(text));
    }

    /// Charts side by side, each with its caption and the name of its standalone .svg file.
    pub fn figures(&mut self, figures: &[(String, String, String)]) {
        self.body.push_str("<div class=\"figures\">\n");
        for (svg, caption, file) in figures {
            let _ = writeln!(
                self.body,
                "<figure>{svg}<figcaption>{} (<a href=\"{}\">{}</a>)</figcaption></figure>",
                escape(caption),
                escape(file),
                escape(file)
            );
        }
        self.body.push_str("</div>\n");
    }

    /// A table; the first column is the row's name.
    pub fn table(&mut self, caption: &str, header: &[String], rows: &[Vec<String>]) {
        let _ = write!(
            self.body,
            "<table>\n<caption>{}</caption>\n<tr>",
            escape(caption)
        );
        for h in header {
            let _ = write!(self.body, "<th>{}</th>", escape(h));
        }
        self.body.push_str("</tr>\n");
        for r in rows {
            self.body.push_str("<tr>");
            for c in r {
                let _ = write!(self.body, "<td>{}</td>", escape(c));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
    }

    /// A confusion matrix (`m[true][predicted]`) with each cell shaded by its share of its row.
    pub fn confusion(&mut self, caption: &str, labels: &[String], m: &[Vec<u64>]) {
        let _ = write!(
            self.body,
            "<table class=\"confusion\">\n<caption>{}</caption>\n<tr><th>true \\ predicted</th>",
            escape(caption)
        );
        for l in labels {
            let _ = write!(self.body, "<th>{}</th>", escape(l));
        }
        self.body.push_str("</tr>\n");
        for (l, row) in labels.iter().zip(m) {
            let total = row.iter().sum::<u64>().max(1) as f64;
            let _ = write!(self.body, "<tr><th>{}</th>", escape(l));
            for &n in row {
                let share = n as f64 / total;
                let _ = write!(
                    self.body,
                    "<td class=\"heat\" style=\"background: rgba(31,119,180,{share:.3})\">{n}</td>"
                );
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
    }

    pub fn finish(self) -> String {
        let mut toc = String::new();
        for (id, heading) in &self.toc {
            let _ = writeln!(
                toc,
                "<li><a href=\"#{}\">{}</a></li>",
                escape(id),
                escape(heading)
            );
        }
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"generator\" content=\"dnabert {}\">\n<title>{}</title>\n<style>{STYLE}</style>\n\
             </head>\n<body>\n<h1>{}</h1>\n<p class=\"meta\">{}</p>\n<nav><ul>\n{toc}</ul></nav>\n{}</body>\n</html>\n",
            env!("CARGO_PKG_VERSION"),
            escape(&self.title),
            escape(&self.title),
            escape(&self.meta),
            self.body
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere_it_lands() {
        let mut p = Page::new("a <b> & \"c\"", "made 'now'");
        p.section("s<1>", "Run <x>");
        p.table("t&", &["n<".into()], &[vec!["<script>".into()]]);
        p.confusion("c", &["a&b".into()], &[vec![3]]);
        p.end_section();
        let html = p.finish();
        assert!(!html.contains("<script>") && !html.contains("<b>"));
        assert!(
            html.contains("&lt;script&gt;") && html.contains("a &lt;b&gt; &amp; &quot;c&quot;")
        );
        assert!(html.contains("href=\"#s&lt;1&gt;\""));
        assert!(html.contains("rgba(31,119,180,1.000)\">3</td>"));
    }
}

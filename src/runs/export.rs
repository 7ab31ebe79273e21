//! Renders a leaderboard as a terminal table, CSV, Markdown or LaTeX. Values are shown in percent
//! (the study's convention); JSON (serde) keeps the raw per-trial values.

use super::leaderboard::{Group, Leaderboard, Row, describe_conventions};
use super::stats::{StdKind, Summary};
use std::fmt::Write;

fn pct(v: f64) -> String {
    format!("{:.2}", v * 100.0)
}

fn pct_opt(v: Option<f64>) -> String {
    v.map(pct).unwrap_or_else(|| "n/a".into())
}

/// "91.00 ± 1.20", with `pm` as the plus-minus sign; one trial has no spread and says so.
fn mean_std(s: &Summary, pm: &str) -> String {
    if s.n < 2 { format!("{} (1 trial)", pct(s.mean)) } else { format!("{} {pm} {}", pct(s.mean), pct_opt(s.std)) }
}

fn ci(s: &Summary) -> String {
    s.ci95.map(|(lo, hi)| format!("[{}, {}]", pct(lo), pct(hi))).unwrap_or_else(|| "n/a".into())
}

/// The p-value cell: "-" for the baseline itself, "n/a" where the test is undefined (n < 2, constant samples).
fn p_text(lb: &Leaderboard, r: &Row) -> String {
    match r.p_value {
        Some(p) => format!("{}{}", format_p(p), if r.significant == Some(true) { " *" } else { "" }),
        None if r.init == lb.baseline => "-".into(),
        None => "n/a".into(),
    }
}

fn format_p(p: f64) -> String {
    if p < 1e-4 { format!("{p:.1e}") } else { format!("{p:.4}") }
}

fn std_name(kind: StdKind) -> &'static str {
    match kind {
        StdKind::Population => "population std (ddof 0, as the study)",
        StdKind::Sample => "sample std (ddof 1)",
    }
}

fn group_title(lb: &Leaderboard, g: &Group) -> String {
    let mut t = format!("{} · {}% labels · {}", lb.dataset, g.anno_percent, g.metric);
    if !g.differs.is_empty() {
        let _ = write!(t, " · differs: {}", g.differs.join(", "));
    }
    t
}

/// The human-readable table for a terminal.
pub fn table(lb: &Leaderboard, per_class: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "values in %, mean ± {}; * = p < {} vs {}",
        std_name(lb.std_kind),
        lb.significance_level,
        lb.baseline
    );
    for g in &lb.groups {
        let _ = writeln!(out, "\n== {}", group_title(lb, g));
        let _ = writeln!(out, "   conventions: {}", describe_conventions(&g.conventions));
        if !g.baseline_present {
            let _ = writeln!(out, "   (no {} runs in this group: no p-values)", lb.baseline);
        }
        let mut rows =
            vec![["rank", "init", "n", "mean ± std", "95% CI", "min", "max", "p"].map(String::from).to_vec()];
        for r in &g.rows {
            let s = &r.summary;
            rows.push(vec![
                r.rank.to_string(),
                r.init.clone(),
                s.n.to_string(),
                mean_std(s, "±"),
                ci(s),
                pct(s.min),
                pct(s.max),
                p_text(lb, r),
            ]);
        }
        out.push_str(&align(&rows));
        if per_class && !g.classes.is_empty() {
            let mut rows = vec![std::iter::once("init".to_string()).chain(g.classes.iter().cloned()).collect()];
            for r in &g.rows {
                let cells = g.classes.iter().map(|c| r.per_class.get(c).map(|v| pct(*v)).unwrap_or_else(|| "-".into()));
                rows.push(std::iter::once(r.init.clone()).chain(cells).collect());
            }
            let _ = writeln!(out, "   per class:");
            out.push_str(&align(&rows));
        }
    }
    for t in &lb.label_efficiency {
        let _ = writeln!(
            out,
            "\n== label efficiency · {} · conventions: {}",
            t.metric,
            describe_conventions(&t.conventions)
        );
        let header = std::iter::once("init".to_string()).chain(t.anno_percents.iter().map(|a| format!("{a}%")));
        let mut rows = vec![header.collect::<Vec<_>>()];
        for r in &t.rows {
            let cells = r.points.iter().map(|p| p.as_ref().map(|s| mean_std(s, "±")));
            rows.push(std::iter::once(r.init.clone()).chain(cells.map(|c| c.unwrap_or_else(|| "-".into()))).collect());
        }
        out.push_str(&align(&rows));
    }
    if !lb.published.is_empty() {
        let _ = writeln!(out, "\n== published (Hosseinzadeh Taher et al., DART 2021; reference only, not ranked)");
        let mut rows = vec![["init", "metric", "mean ± std", "note"].map(String::from).to_vec()];
        for p in &lb.published {
            rows.push(vec![
                p.init.clone(),
                p.metric.clone(),
                format!("{:.2} ± {:.2}", p.mean_percent, p.std_percent),
                p.note.clone().unwrap_or_default(),
            ]);
        }
        out.push_str(&align(&rows));
    }
    if lb.groups.is_empty() {
        let _ = writeln!(out, "\nno results for dataset {:?} yet", lb.dataset);
    }
    out
}

fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().enumerate().map(|(i, s)| format!("{s:<w$}", w = widths[i])).collect();
        let _ = writeln!(out, "   {}", cells.join("  ").trim_end());
    }
    out
}

pub const CSV_HEADER: [&str; 17] = [
    "source",
    "dataset",
    "anno_percent",
    "metric",
    "conventions",
    "differs",
    "rank",
    "init",
    "n",
    "mean_pct",
    "std_pct",
    "std_kind",
    "ci95_low_pct",
    "ci95_high_pct",
    "min_pct",
    "max_pct",
    "p_value",
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn num4(v: Option<f64>) -> String {
    v.map(|v| format!("{:.4}", v * 100.0)).unwrap_or_default()
}

/// One CSV table (RFC 4180 quoting): the user's rows with source "medxfer", then published rows.
pub fn csv(lb: &Leaderboard) -> String {
    let mut out = CSV_HEADER.join(",") + "\n";
    let std_kind = match lb.std_kind {
        StdKind::Population => "population",
        StdKind::Sample => "sample",
    };
    for g in &lb.groups {
        let conventions = serde_json::to_string(&g.conventions).unwrap_or_default();
        for r in &g.rows {
            let s = &r.summary;
            let fields = [
                "medxfer".to_string(),
                lb.dataset.clone(),
                g.anno_percent.to_string(),
                g.metric.clone(),
                conventions.clone(),
                g.differs.join("; "),
                r.rank.to_string(),
                r.init.clone(),
                s.n.to_string(),
                num4(Some(s.mean)),
                num4(s.std),
                std_kind.to_string(),
                num4(s.ci95.map(|c| c.0)),
                num4(s.ci95.map(|c| c.1)),
                num4(Some(s.min)),
                num4(Some(s.max)),
                r.p_value.map(|p| format!("{p:.6e}")).unwrap_or_default(),
            ];
            out += &(fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",") + "\n");
        }
    }
    for p in &lb.published {
        let fields = [
            "published",
            &p.dataset,
            "100",
            &p.metric,
            "",
            "",
            "",
            &p.init,
            "",
            &format!("{:.2}", p.mean_percent),
            &format!("{:.2}", p.std_percent),
            "population",
            "",
            "",
            "",
            "",
            "",
        ];
        out += &(fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",") + "\n");
    }
    out
}

/// Markdown: one table per group, then the published reference rows.
pub fn markdown(lb: &Leaderboard) -> String {
    let mut out = String::new();
    for g in &lb.groups {
        let _ = writeln!(out, "### {}\n", group_title(lb, g));
        let _ = writeln!(
            out,
            "Conventions: {}. Values in %, mean ± {}.\n",
            describe_conventions(&g.conventions),
            std_name(lb.std_kind)
        );
        let _ = writeln!(out, "| Rank | Init | n | Mean ± std | 95% CI | p vs {} |", lb.baseline);
        let _ = writeln!(out, "|---:|---|---:|---|---|---|");
        for r in &g.rows {
            let s = &r.summary;
            let mean = mean_std(s, "±");
            let p = p_text(lb, r);
            let _ = writeln!(out, "| {} | {} | {} | {} | {} | {} |", r.rank, md_escape(&r.init), s.n, mean, ci(s), p);
        }
        out.push('\n');
    }
    if !lb.published.is_empty() {
        let _ = writeln!(out, "### Published (Hosseinzadeh Taher et al., DART 2021; not ranked)\n");
        let _ = writeln!(out, "| Init | Metric | Mean ± std |\n|---|---|---|");
        for p in &lb.published {
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} ± {:.2} |",
                md_escape(&p.init),
                p.metric,
                p.mean_percent,
                p.std_percent
            );
        }
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// LaTeX: one plain `tabular` per group (no packages needed), published rows last and marked.
pub fn latex(lb: &Leaderboard) -> String {
    let mut out = String::new();
    for g in &lb.groups {
        let _ = writeln!(out, "% {}", group_title(lb, g).replace('\n', " "));
        let _ = writeln!(out, "% conventions: {}", describe_conventions(&g.conventions).replace('\n', " "));
        let _ = writeln!(out, "\\begin{{tabular}}{{rlrll}}\n\\hline");
        let _ = writeln!(
            out,
            "Rank & Init & $n$ & Mean $\\pm$ std (\\%) & $p$ vs {} \\\\\n\\hline",
            tex_escape(&lb.baseline)
        );
        for r in &g.rows {
            let s = &r.summary;
            let mean = mean_std(s, "$\\pm$");
            let p = match p_text(lb, r).as_str() {
                "-" => "--".to_string(),
                other => other.replace(" *", "$^*$"),
            };
            let _ = writeln!(out, "{} & {} & {} & {} & {} \\\\", r.rank, tex_escape(&r.init), s.n, mean, p);
        }
        for p in lb.published.iter().filter(|p| g.anno_percent == 100 && p.metric == g.metric) {
            let mean = format!("{:.2} $\\pm$ {:.2}", p.mean_percent, p.std_percent);
            let _ = writeln!(out, "-- & {} (published) & -- & {} & -- \\\\", tex_escape(&p.init), mean);
        }
        let _ = writeln!(out, "\\hline\n\\end{{tabular}}\n");
    }
    out
}

fn tex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            _ => out.push(c),
        }
    }
    out
}

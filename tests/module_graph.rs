//! The module graph stays layered: every `crate::x` path in a top-level module of src/ must be allowed by the
//! dependency table in ARCHITECTURE.md (parsed here, so the document and the rule cannot drift), `cli`, `tui`
//! and `sched` are imported only from above them, and no cycle passes through `cli`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module → the modules it imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The upper layer, highest first: a module may import one of these only when it stands above it here.
const UPPER: [&str; 3] = ["cli", "tui", "sched"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The top-level modules, as src/lib.rs declares them.
fn top_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod ")))
        .map(|l| l.trim_end_matches(';').trim().to_string())
        .collect()
}

/// The "Module dependencies" table of ARCHITECTURE.md: `| \`module\` | \`a\`, \`b\` |` (— for none).
fn allowed_table() -> Graph {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let section =
        doc.split("\n## Module dependencies").nth(1).expect("ARCHITECTURE.md has no '## Module dependencies'");
    let section = section.split("\n## ").next().unwrap();
    let mut table = Graph::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').collect();
        assert_eq!(cells.len(), 2, "ARCHITECTURE.md dependency row {row:?} needs two cells");
        let module = backticked(cells[0]).into_iter().next().unwrap();
        let imports = backticked(cells[1]).into_iter().collect();
        assert!(table.insert(module.clone(), imports).is_none(), "ARCHITECTURE.md lists `{module}` twice");
    }
    table
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The code of one line without its `//` comment (a `//` inside a string literal stays).
fn without_comment(line: &str) -> &str {
    let (mut in_string, mut escaped) = (false, false);
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '/' if !in_string && line[i + 1..].starts_with('/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The top-level names that `crate::` paths in `code` start with, `use crate::{a::X, b}` included.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let code: String = code.lines().map(without_comment).collect::<Vec<_>>().join("\n");
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Split the group's items at its own commas; each item's first name is a module.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.insert(leading_name(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            names.insert(leading_name(&item));
        } else {
            names.insert(leading_name(rest));
        }
    }
    names.remove("");
    names
}

fn leading_name(path: &str) -> String {
    path.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What each top-level module imports from the others, with the first file that does it.
fn actual_imports(tops: &BTreeSet<String>) -> BTreeMap<(String, String), PathBuf> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut edges = BTreeMap::new();
    for file in files {
        let first = file.strip_prefix(&src).unwrap().components().next().unwrap();
        let module = first.as_os_str().to_str().unwrap().trim_end_matches(".rs").to_string();
        if !tops.contains(&module) {
            continue; // lib.rs, main.rs, bin/: the crate's roots
        }
        let code = std::fs::read_to_string(&file).unwrap();
        for name in crate_paths(&code) {
            if tops.contains(&name) && name != module {
                edges.entry((module.clone(), name)).or_insert_with(|| file.clone());
            }
        }
    }
    edges
}

fn graph_of(edges: &BTreeMap<(String, String), PathBuf>) -> Graph {
    let mut g = Graph::new();
    for (from, to) in edges.keys() {
        g.entry(from.clone()).or_default().insert(to.clone());
    }
    g
}

/// How high a module stands: the index in UPPER, every other module below them all.
fn rank(module: &str) -> usize {
    UPPER.iter().position(|u| *u == module).unwrap_or(UPPER.len())
}

/// Each import of an upper module from beside or below it, and each cycle through `cli`.
fn layering_problems(g: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for (from, imports) in g {
        for to in imports {
            if rank(to) < UPPER.len() && rank(from) >= rank(to) {
                problems.push(format!("`{from}` imports `{to}`, which only modules above it may import"));
            }
        }
    }
    // A path from cli's imports back to cli.
    let mut stack: Vec<Vec<String>> =
        g.get("cli").into_iter().flatten().map(|m| vec!["cli".into(), m.clone()]).collect();
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap().clone();
        if last == "cli" {
            problems.push(format!("cycle through cli: {}", path.join(" -> ")));
            continue;
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in g.get(&last).into_iter().flatten() {
            let mut longer = path.clone();
            longer.push(next.clone());
            stack.push(longer);
        }
    }
    problems
}

#[test]
fn every_import_between_modules_is_in_the_architecture_table() {
    let tops = top_modules();
    let table = allowed_table();
    let listed: BTreeSet<String> = table.keys().cloned().collect();
    assert_eq!(listed, tops, "ARCHITECTURE.md's dependency table must have one row per module of src/lib.rs");
    for imports in table.values() {
        let unknown: Vec<_> = imports.difference(&tops).collect();
        assert!(unknown.is_empty(), "ARCHITECTURE.md's dependency table names no such module: {unknown:?}");
    }
    let undocumented: Vec<String> = actual_imports(&tops)
        .into_iter()
        .filter(|((from, to), _)| !table[from].contains(to))
        .map(|((from, to), file)| format!("{} uses crate::{to}, not allowed for `{from}`", file.display()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "imports missing from ARCHITECTURE.md's dependency table (add them there if they belong, else move the \
         code):\n{}",
        undocumented.join("\n")
    );
}

#[test]
fn cli_tui_and_sched_are_imported_only_from_above_and_no_cycle_runs_through_cli() {
    let problems = layering_problems(&allowed_table());
    assert!(problems.is_empty(), "ARCHITECTURE.md's dependency table:\n{}", problems.join("\n"));
    let problems = layering_problems(&graph_of(&actual_imports(&top_modules())));
    assert!(problems.is_empty(), "src/:\n{}", problems.join("\n"));
}

#[test]
fn a_lower_module_importing_an_upper_one_is_refused() {
    let mut g = graph_of(&actual_imports(&top_modules()));
    g.entry("runs".into()).or_default().insert("cli".into());
    g.entry("sched".into()).or_default().insert("tui".into());
    g.entry("atomic".into()).or_default().insert("sched".into());
    let problems = layering_problems(&g).join("\n");
    assert!(problems.contains("`runs` imports `cli`"), "{problems}");
    assert!(problems.contains("`sched` imports `tui`"), "{problems}");
    assert!(problems.contains("`atomic` imports `sched`"), "{problems}");
    assert!(problems.contains("cycle through cli: cli -> ") && problems.contains("-> runs -> cli"), "{problems}");
}

#[test]
fn the_scan_reads_grouped_paths_and_skips_comments() {
    let code = "use crate::{config::Config, home::{Ctx, Home}};\n\
                let x = crate::runs::store::scan(); // crate::cli::one_sentence\n\
                /// See `crate::tui`.\n\
                let url = \"http://a\"; crate::gpu::nvml_gpus();\n";
    let found: Vec<String> = crate_paths(code).into_iter().collect();
    assert_eq!(found, ["config", "gpu", "home", "runs"]);
}

//! `graph`: the dependency graph as Graphviz DOT or Mermaid, grouped by
//! phase, each task coloured by its status.

use std::fmt::Write;

use anyhow::Result;

use crate::model::definitions::Definitions;
use crate::model::graph::Dep;
use crate::model::layout::Layout;
use crate::run::plan;
use crate::state::status;

use crate::cli::Format;

/// Fill and stroke colour of each state (pending has no status file).
const COLOURS: [(&str, &str, &str); 9] = [
    ("completed", "#c8e6c9", "#2e7d32"),
    ("running", "#bbdefb", "#1565c0"),
    ("merging", "#e1bee7", "#6a1b9a"),
    ("paused", "#fff9c4", "#f9a825"),
    ("awaiting_approval", "#e1f5fe", "#0277bd"),
    ("stale", "#f1f8e9", "#9e9d24"),
    ("failed", "#ffcdd2", "#c62828"),
    ("blocked", "#ffe0b2", "#ef6c00"),
    ("pending", "#eeeeee", "#757575"),
];

pub fn run(layout: &Layout, format: Format, phase: Option<&str>) -> Result<i32> {
    let defs = crate::model::definitions::load(layout)?;
    let phase = phase.map(|name| defs.phase(name)).transpose()?;
    let (text, mut warnings) = render(layout, &defs, format, phase.as_deref());
    if format == Format::Mermaid {
        warnings.extend(past_mermaid_limits(&text));
    }
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    print!("{text}");
    Ok(crate::exit::SUCCESS)
}

/// Mermaid's `maxEdges` and `maxTextSize` (the same in mermaid 10 to 12):
/// past either it draws an error instead of the graph, and a diagram cannot
/// raise them itself, so neither can one pasted into a page.
const MERMAID_MAX_EDGES: usize = 500;
const MERMAID_MAX_TEXT: usize = 50_000;

/// That Mermaid would draw no graph of `text`, and what to do instead.
fn past_mermaid_limits(text: &str) -> Option<String> {
    // A label has no `-->` (its `>` is coded): each is an edge's line.
    let edges = text.matches(" --> ").count();
    // Mermaid counts the text in JavaScript's UTF-16 units.
    let size = text.encode_utf16().count();
    (edges > MERMAID_MAX_EDGES || size > MERMAID_MAX_TEXT).then(|| {
        format!(
            "Mermaid draws no graph of more than {MERMAID_MAX_EDGES} edges or {MERMAID_MAX_TEXT} characters \
             (limits a diagram cannot raise), and this one has {edges} edges and {size} characters: \
             `--phase P` draws one phase, `--format dot` any size"
        )
    })
}

/// The graph's text, and the status files that could not be read.
fn render(
    layout: &Layout,
    defs: &Definitions,
    format: Format,
    only: Option<&str>,
) -> (String, Vec<String>) {
    let graph = &defs.graph;
    let shown = |t: usize| only.is_none_or(|p| graph.tasks[t].phase() == p);
    let mut warnings = Vec::new();
    let statuses: Vec<_> = (graph.tasks.iter())
        .map(|task| status::read_or_warn(layout, &task.id, &mut warnings))
        .collect();
    let blockers = status::shown_blockers(layout, graph, &statuses);
    let pauses = plan::pauses(defs, status::pause_on(&statuses));
    let held = |t: usize| pauses.get(t).is_some_and(Option::is_some);
    let states = status::shown_states(layout, graph, &statuses, &blockers, held);
    let mut out = String::new();
    match format {
        Format::Mermaid => out.push_str("flowchart LR\n"),
        Format::Dot => out.push_str("digraph tasks {\n  rankdir=LR;\n  compound=true;\n  node [shape=box, style=\"rounded,filled\"];\n"),
    }
    for (p, phase) in graph.phases.iter().enumerate() {
        if only.is_some_and(|name| name != phase.name) {
            continue;
        }
        match format {
            Format::Mermaid => writeln!(out, "  subgraph p{p}[\"{}\"]", text(format, &phase.name)),
            Format::Dot => writeln!(
                out,
                "  subgraph cluster_{p} {{\n    label=\"{}\";",
                text(format, &phase.name)
            ),
        }
        .unwrap();
        for &t in &phase.tasks {
            let task = &graph.tasks[t];
            let label = text(
                format,
                (task.id.strip_prefix(&format!("{}/", phase.name))).unwrap_or(&task.id),
            );
            let state = states[t];
            match format {
                Format::Mermaid => writeln!(out, "    n{t}[\"{label}\"]:::{state}"),
                Format::Dot => {
                    let (_, fill, stroke) = COLOURS
                        .iter()
                        .find(|c| c.0 == state)
                        .expect("every state has colours");
                    writeln!(
                        out,
                        "    n{t} [label=\"{label}\", fillcolor=\"{fill}\", color=\"{stroke}\"];"
                    )
                }
            }
            .unwrap();
        }
        // A phase depended on with no task yet (its tasks are to be
        // generated): Graphviz draws no empty cluster and no edge from one,
        // so it gets a node that says so.
        if phase.tasks.is_empty() && format == Format::Dot {
            writeln!(out, "    p{p} [label=\"(no task yet)\", style=dashed];").unwrap();
        }
        match format {
            Format::Mermaid => out.push_str("  end\n"),
            Format::Dot => out.push_str("  }\n"),
        }
    }
    for t in (0..graph.tasks.len()).filter(|&t| shown(t)) {
        for dep in &graph.deps[t] {
            let line = match (*dep, format) {
                (Dep::Task(d), _) if !shown(d) => continue,
                (Dep::Task(d), Format::Mermaid) => format!("  n{d} --> n{t}"),
                (Dep::Task(d), Format::Dot) => format!("  n{d} -> n{t};"),
                (Dep::Phase(p), Format::Mermaid) if only.is_none() => format!("  p{p} --> n{t}"),
                (Dep::Phase(p), Format::Dot) if only.is_none() => {
                    match graph.phases[p].tasks.first() {
                        Some(first) => format!("  n{first} -> n{t} [ltail=cluster_{p}];"),
                        None => format!("  p{p} -> n{t} [ltail=cluster_{p}];"),
                    }
                }
                (Dep::Phase(_), _) => continue,
            };
            writeln!(out, "{line}").unwrap();
        }
    }
    match format {
        Format::Mermaid => {
            for (state, fill, stroke) in COLOURS {
                writeln!(out, "  classDef {state} fill:{fill},stroke:{stroke}").unwrap();
            }
        }
        Format::Dot => out.push_str("}\n"),
    }
    (out, warnings)
}

/// A name as text inside the format's double quotes.
fn text(format: Format, name: &str) -> String {
    match format {
        Format::Mermaid => mermaid_text(name),
        Format::Dot => dot_text(name),
    }
}

/// Characters Mermaid gives a meaning inside a quoted label (mermaid 10
/// to 12, checked by rendering): `"` ends it; `#` starts an entity code;
/// the label is HTML (`<`, `>`, `&`); `\n` is a line break; a backtick
/// opens a Markdown string (three fail the parse); `$$...$$` is KaTeX math;
/// `%%{...}%%` is a directive, taken out of the text wherever it is; `:`
/// makes `fa:fa-car` an icon, and in a line with `style` or `classDef`
/// before it, takes the `;` off the next entity code.
const MERMAID_CODED: &str = "\"#&<>\\`$%:";

/// A name as Mermaid label text: each character of `MERMAID_CODED` as its
/// entity code (`#35;` for `#`), which Mermaid shows as that character.
fn mermaid_text(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if MERMAID_CODED.contains(c) {
            write!(out, "#{};", u32::from(c)).unwrap();
        } else {
            out.push(c);
        }
    }
    out
}

/// A name as a DOT string: a backslash starts an escape (`\n`, `\N` the
/// node's name), `"` ends the string, and Graphviz shows an HTML entity
/// (`&amp;`, `&#35;`) as the character it codes.
fn dot_text(name: &str) -> String {
    name.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('&', "&amp;")
}

//! The layering rules of docs/ARCHITECTURE.md, read off the source: the engine imports nothing
//! from the layers above it, and no two modules (top-level, or siblings inside one) depend on
//! each other in a circle. Dependencies are `crate::x::…` and `super::x` paths outside
//! `#[cfg(test)]` code — text, not the compiler's view, which is enough for these rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn sources() -> Vec<(Vec<String>, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).expect("under src").with_extension("");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&p).expect("read source");
            let code = match text.find("#[cfg(test)]") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            (parts, code)
        })
        .collect()
}

fn graphs() -> (Graph, BTreeMap<String, Graph>) {
    let files = sources();
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|(p, _)| p.first().cloned())
        .collect();
    let mut children: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (p, _) in &files {
        if p.len() == 2 {
            children
                .entry(p[0].clone())
                .or_default()
                .insert(p[1].clone());
        }
    }
    let crate_path = regex::Regex::new(r"crate::([a-z_]+)(?:::([a-z_]+))?").unwrap();
    let super_path = regex::Regex::new(r"super::([a-z_]+)").unwrap();
    let super_group = regex::Regex::new(r"use super::\{([^}]*)\}").unwrap();
    let word = regex::Regex::new(r"\b([a-z_]+)\b").unwrap();
    let mut top_graph = Graph::new();
    let mut inner: BTreeMap<String, Graph> = BTreeMap::new();
    for (parts, code) in &files {
        let Some(top) = parts.first() else { continue };
        for c in crate_path.captures_iter(code) {
            let dep = &c[1];
            if dep != top && tops.contains(dep) {
                top_graph
                    .entry(top.clone())
                    .or_default()
                    .insert(dep.to_string());
            }
        }
        if parts.len() != 2 {
            continue;
        }
        let me = &parts[1];
        let siblings = children.get(top).cloned().unwrap_or_default();
        let mut add = |dep: &str| {
            if dep != me && siblings.contains(dep) {
                inner
                    .entry(top.clone())
                    .or_default()
                    .entry(me.clone())
                    .or_default()
                    .insert(dep.to_string());
            }
        };
        for c in crate_path.captures_iter(code) {
            if &c[1] == top {
                if let Some(m) = c.get(2) {
                    add(m.as_str());
                }
            }
        }
        for c in super_path.captures_iter(code) {
            add(&c[1]);
        }
        for g in super_group.captures_iter(code) {
            for w in word.captures_iter(&g[1]) {
                add(&w[1]);
            }
        }
    }
    (top_graph, inner)
}

/// Every strongly connected set of more than one node (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        if let Some(ws) = t.g.get(v) {
            for w in ws {
                let w = w.as_str();
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let lw = t.low[w];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn the_engine_depends_on_nothing_above_it() {
    let (top, _) = graphs();
    let engine = top.get("engine").cloned().unwrap_or_default();
    for above in ["api", "client", "cli", "tui", "mcp", "kitty"] {
        assert!(
            !engine.contains(above),
            "engine imports {above}: {engine:?}"
        );
    }
}

#[test]
fn no_module_depends_on_itself_in_a_circle() {
    let (top, inner) = graphs();
    assert_eq!(
        cycles(&top),
        Vec::<Vec<String>>::new(),
        "top-level: {top:?}"
    );
    for (parent, g) in &inner {
        assert_eq!(
            cycles(g),
            Vec::<Vec<String>>::new(),
            "inside {parent}: {g:?}"
        );
    }
}

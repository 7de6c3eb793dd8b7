//! The layering check: reads the layer table from the module doc of `src/lib.rs`, scans every
//! `src/**/*.rs` for `crate::…` paths outside comments and string literals (`use crate::x`,
//! `use crate::{x, y::Z}`, `crate::x::f()` in code), and fails when a module names one from a
//! layer above its own. Same-layer and downward imports are fine. A module missing from the
//! table fails too, so a new module must be given a place.
//!
//! The table is the one written in `src/lib.rs`:
//!
//! ```text
//! //! | layer    | modules              |
//! //! |----------|----------------------|
//! //! | leaf     | config, secret, …    |
//! ```
//!
//! Rows are ordered bottom-up: the first row is the lowest layer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where a file sits: its top-level module (`src/sms/delivery.rs` -> `sms`), or `None` for
/// the crate root files (`lib.rs` is the map, `main.rs` the binary).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The table's rows bottom-up: (layer, modules).
fn parse_layers(lib_rs: &str) -> Vec<(String, Vec<String>)> {
    let mut layers = Vec::new();
    for line in lib_rs.lines() {
        let Some(doc) = line.strip_prefix("//!") else { continue };
        let doc = doc.trim();
        let Some(row) = doc.strip_prefix('|').and_then(|r| r.strip_suffix('|')) else { continue };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let [layer, modules] = cells[..] else { continue };
        if layer == "layer" || layer.starts_with('-') {
            continue;
        }
        let modules = modules.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect();
        layers.push((layer.to_owned(), modules));
    }
    layers
}

/// The source with comments and the contents of string and char literals blanked out
/// (newlines kept, so line numbers still match).
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let rest: String = chars[j + 1..].iter().collect();
            let len = rest.find(&close).map_or(rest.chars().count(), |at| rest[..at].chars().count());
            let end = (j + 1 + len + close.chars().count()).min(chars.len());
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let skip = if chars[i] == '\\' { 2 } else { 1 };
                for k in 0..skip {
                    if let Some(&c) = chars.get(i + k) {
                        out.push(blank(c));
                    }
                }
                i += skip;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '"'), else a lifetime or label.
            let len = if next == Some('\\') {
                chars[i + 2..].iter().position(|&c| c == '\'').map(|p| p + 3)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(3)
            } else {
                None
            };
            match len {
                Some(len) => {
                    out.extend(chars[i..(i + len).min(chars.len())].iter().map(|&c| blank(c)));
                    i += len;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Every `crate::` path in code: (line, first segment). A group `crate::{a::X, b}` gives each
/// of its top-level items.
fn crate_paths(source: &str) -> Vec<(usize, String)> {
    let code = code_only(source);
    let mut found = Vec::new();
    for (index, _) in code.match_indices("crate::") {
        let before = code[..index].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in a macro, or an identifier ending in `crate`.
        }
        let line = code[..index].matches('\n').count() + 1;
        let rest = code[index + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            for item in top_level_items(group) {
                if let Some(first) = first_segment(item) {
                    found.push((line, first));
                }
            }
        } else if let Some(first) = first_segment(rest) {
            found.push((line, first));
        }
    }
    found
}

/// The comma-separated items of a `{…}` group up to its closing brace, nested groups kept whole.
fn top_level_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..at]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty() && name != "self").then_some(name)
}

#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    to: String,
    why: String,
}

/// The upward imports in `source`, the text of `file` (relative to the crate, `src/…`).
fn check_file(file: &str, source: &str, layers: &[(String, Vec<String>)]) -> Vec<Violation> {
    let rank: HashMap<&str, (usize, &str)> = layers
        .iter()
        .enumerate()
        .flat_map(|(rank, (layer, modules))| modules.iter().map(move |m| (m.as_str(), (rank, layer.as_str()))))
        .collect();
    let relative = Path::new(file).strip_prefix("src").unwrap_or(Path::new(file));
    let Some(module) = module_of(relative) else { return Vec::new() };
    let Some(&(own_rank, own_layer)) = rank.get(module.as_str()) else {
        return vec![Violation {
            file: file.to_owned(),
            line: 0,
            from: module.clone(),
            to: String::new(),
            why: format!("module {module} is not in the layer table of src/lib.rs"),
        }];
    };
    let mut violations = Vec::new();
    for (line, target) in crate_paths(source) {
        if target == module {
            continue;
        }
        // A name that is no module (a root re-export such as `crate::App`) belongs to the root.
        let (target_rank, target_layer) = rank.get(target.as_str()).copied().unwrap_or((usize::MAX, "the crate root"));
        if target_rank > own_rank {
            violations.push(Violation {
                file: file.to_owned(),
                line,
                from: module.clone(),
                to: target.clone(),
                why: format!("{module} ({own_layer}) imports {target} ({target_layer}), a layer above"),
            });
        }
    }
    violations
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn crate_layers() -> Vec<(String, Vec<String>)> {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("src/lib.rs");
    parse_layers(&lib)
}

#[test]
fn no_module_imports_from_a_layer_above() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layers = crate_layers();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    assert!(files.len() > 20, "found the sources");
    let mut violations = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(root).expect("under the crate").to_string_lossy().replace('\\', "/");
        let source = std::fs::read_to_string(path).expect("readable source");
        violations.extend(check_file(&relative, &source, &layers));
    }
    let report: Vec<String> = violations.iter().map(|v| format!("{}:{}: {}", v.file, v.line, v.why)).collect();
    assert!(report.is_empty(), "upward imports:\n{}", report.join("\n"));
}

#[test]
fn the_table_places_every_top_level_module_once() {
    let layers = crate_layers();
    let names: Vec<&str> = layers.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(names, ["leaf", "media", "codecs", "store", "services", "edge", "root"]);
    let mut seen = HashMap::new();
    for (layer, modules) in &layers {
        for m in modules {
            assert!(seen.insert(m.clone(), layer.clone()).is_none(), "{m} is in two layers");
        }
    }
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("src/lib.rs");
    for line in code_only(&lib).lines() {
        let Some(rest) = line.trim().strip_prefix("pub mod ").or_else(|| line.trim().strip_prefix("mod ")) else {
            continue;
        };
        let name = rest.trim_end_matches(';').trim();
        assert!(seen.contains_key(name), "lib.rs declares {name}, which the table does not place");
    }
    // Ordered as the design has it: config is a leaf, the services above the store, app on top.
    let rank = |m: &str| layers.iter().position(|(_, ms)| ms.iter().any(|x| x == m)).expect(m);
    assert!(rank("config") < rank("media") && rank("media") < rank("telco") && rank("telco") < rank("voice"));
    assert!(rank("store") < rank("sms") && rank("sms") < rank("api") && rank("api") < rank("app"));
}

// The checker itself, on synthetic sources: it must be able to fail.

const TABLE: &str = "\
//! | layer    | modules            |
//! |----------|--------------------|
//! | leaf     | config, e164       |
//! | codecs   | telco              |
//! | store    | store              |
//! | services | sms                |
";

#[test]
fn checker_flags_an_upward_import() {
    let layers = parse_layers(TABLE);
    assert_eq!(layers.len(), 4);
    let source = "use crate::e164::E164;\nuse crate::telco::SmsNetwork;\n";
    let found = check_file("src/config.rs", source, &layers);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].line, found[0].from.as_str(), found[0].to.as_str()), (2, "config", "telco"));
    // The same import from above is fine.
    assert!(check_file("src/sms/dispatcher.rs", source, &layers).is_empty());
}

#[test]
fn checker_reads_groups_paths_in_code_and_ignores_comments_and_strings() {
    let layers = parse_layers(TABLE);
    let grouped = "use crate::{e164::E164, sms::{SmsService, SmsSettings}};\n";
    let found = check_file("src/store/mod.rs", grouped, &layers);
    assert_eq!(found.iter().map(|v| v.to.as_str()).collect::<Vec<_>>(), ["sms"]);
    let in_code = "fn f() {\n    let _ = crate::sms::MAX;\n}\n";
    assert_eq!(check_file("src/telco/smpp/session.rs", in_code, &layers)[0].line, 2);
    let inert = "// use crate::sms::X;\n/// see crate::sms\nconst S: &str = \"crate::sms\";\nconst R: &str = r#\"crate::sms\"#;\nfn g<'a>(c: char) -> bool { c == '\"' }\nmacro_rules! m { () => { $crate::sms::X } }\n";
    assert!(check_file("src/store/mod.rs", inert, &layers).is_empty(), "{:?}", crate_paths(inert));
    // A module the table does not place fails, and so does a root re-export from below.
    assert_eq!(check_file("src/newthing.rs", "", &layers).len(), 1);
    assert_eq!(check_file("src/telco/mod.rs", "use crate::App;\n", &layers).len(), 1);
}

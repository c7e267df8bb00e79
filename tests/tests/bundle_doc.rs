//! `docs/bundle.md` against the manifest the engine reads
//! (`telic::model::bundle::Manifest`, whose serde structs are the Rust
//! schema): the page's TOML example loads, and its key table names exactly
//! the keys the engine knows, with their types and which of them are
//! required. `bindings/python/tests/test_bundle_doc.py` holds the same page
//! to the Python schema (`telic.train.manifest.SCHEMA`).

use std::collections::BTreeSet;
use std::path::Path;
use telic::model::bundle::Manifest;
use toml::{Table, Value};

/// One row of the page's key table.
#[derive(Debug)]
struct Key {
    /// Dotted path; `actions[].name` is the `name` of each `[[actions]]` entry.
    path: String,
    /// The type column (`integer`, `array of strings`, `table, free-form`, …).
    kind: String,
    required: bool,
}

impl Key {
    fn free_form(&self) -> bool {
        self.kind.contains("free-form")
    }
}

fn page() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bundle.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ```toml blocks of the page.
fn toml_examples(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The rows of the page's key table: `| `path` | type | yes/no | meaning |`.
fn key_table(text: &str) -> Vec<Key> {
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, key, kind, required, ..] = cells.as_slice() else {
                return None;
            };
            let path = key.strip_prefix('`')?.strip_suffix('`')?;
            let required = match *required {
                "yes" => true,
                "no" => false,
                _ => return None,
            };
            Some(Key {
                path: path.to_owned(),
                kind: (*kind).to_owned(),
                required,
            })
        })
        .collect()
}

/// The page's full example (its first TOML block, which has every optional
/// table) as a TOML table; the other blocks are smaller examples.
fn example(text: &str) -> Table {
    let blocks = toml_examples(text);
    assert!(!blocks.is_empty(), "docs/bundle.md has a TOML example");
    blocks[0]
        .parse()
        .unwrap_or_else(|e| panic!("the example is not TOML: {e}"))
}

/// Every key path in `table` below `prefix`, arrays of tables as `name[]`,
/// not descending into the tables the page calls free-form.
fn paths(table: &Table, prefix: &str, free_form: &BTreeSet<String>, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        out.insert(path.clone());
        if free_form.contains(&path) {
            continue;
        }
        match value {
            Value::Table(inner) => paths(inner, &path, free_form, out),
            Value::Array(items) => {
                for inner in items.iter().filter_map(Value::as_table) {
                    paths(inner, &format!("{path}[]"), free_form, out);
                }
            }
            _ => {}
        }
    }
}

/// The tables holding `path`'s key (every entry of an array of tables), and
/// the key: `actions[].name` is `name` in each `actions` entry.
fn tables_of<'a>(doc: &'a mut Table, path: &str) -> (Vec<&'a mut Table>, String) {
    let mut segments: Vec<&str> = path.split('.').collect();
    let Some(key) = segments.pop() else {
        panic!("`{path}` names no key");
    };
    let mut tables = vec![doc];
    for segment in segments {
        let (name, each) = match segment.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (segment, false),
        };
        tables = tables
            .into_iter()
            .flat_map(|t| {
                let value = t.get_mut(name);
                match (value, each) {
                    (Some(Value::Table(inner)), false) => vec![inner],
                    (Some(Value::Array(items)), true) => {
                        items.iter_mut().filter_map(Value::as_table_mut).collect()
                    }
                    (other, _) => panic!("{path}: `{name}` is {other:?} in the example"),
                }
            })
            .collect();
    }
    (tables, key.to_owned())
}

/// Whether `value` has the type the page's table gives.
fn has_kind(value: &Value, kind: &str) -> bool {
    let all = |items: &Vec<Value>, f: fn(&Value) -> bool| !items.is_empty() && items.iter().all(f);
    let number = |v: &Value| v.is_float() || v.is_integer();
    match (kind, value) {
        ("integer", v) => v.is_integer(),
        ("number", v) => number(v),
        ("string", v) => v.is_str(),
        ("array of strings", Value::Array(a)) => all(a, Value::is_str),
        ("array of numbers", Value::Array(a)) => all(a, number),
        ("array of tables", Value::Array(a)) => all(a, Value::is_table),
        ("table of numbers, free-form", Value::Table(t)) => !t.is_empty() && t.values().all(number),
        ("table of arrays of numbers, free-form", Value::Table(t)) => {
            !t.is_empty()
                && t.values()
                    .all(|v| v.as_array().is_some_and(|a| all(a, number)))
        }
        ("table" | "table, free-form", v) => v.is_table(),
        _ => false,
    }
}

#[test]
fn the_example_loads() {
    for block in toml_examples(&page()) {
        if let Err(e) = Manifest::from_toml(&block) {
            panic!("the example of docs/bundle.md does not load: {e}\n{block}");
        }
    }
}

#[test]
fn the_key_table_names_every_key_of_the_manifest_and_no_other() {
    let text = page();
    let keys = key_table(&text);
    assert!(keys.len() > 10, "docs/bundle.md has a key table: {keys:?}");
    let free_form: BTreeSet<String> = keys
        .iter()
        .filter(|k| k.free_form())
        .map(|k| k.path.clone())
        .collect();
    // What the engine writes of a manifest with every optional part present
    // is what its serde structs know.
    let manifest =
        Manifest::from_toml(&toml::to_string(&example(&text)).expect("TOML")).expect("it loads");
    let written: Table = manifest
        .to_toml()
        .expect("a manifest writes")
        .parse()
        .expect("and reads back");
    let mut engine = BTreeSet::new();
    paths(&written, "", &free_form, &mut engine);
    let page: BTreeSet<String> = keys.iter().map(|k| k.path.clone()).collect();
    assert_eq!(
        page.difference(&engine).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "keys of docs/bundle.md the engine does not know (or the example leaves out)"
    );
    assert_eq!(
        engine.difference(&page).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "keys of the engine's manifest missing from the key table of docs/bundle.md"
    );
}

#[test]
fn the_key_table_gives_each_key_its_type_in_the_example() {
    let text = page();
    let mut doc = example(&text);
    for key in key_table(&text) {
        let (tables, name) = tables_of(&mut doc, &key.path);
        for table in tables {
            let value = table.get(&name);
            assert!(
                value.is_some_and(|v| has_kind(v, &key.kind)),
                "{}: docs/bundle.md says {}, the example has {value:?}",
                key.path,
                key.kind
            );
        }
    }
}

#[test]
fn the_key_table_says_which_keys_the_engine_requires() {
    let text = page();
    for key in key_table(&text) {
        let mut doc = example(&text);
        let (tables, name) = tables_of(&mut doc, &key.path);
        for table in tables {
            table.remove(&name);
        }
        let result = Manifest::from_toml(&toml::to_string(&doc).expect("TOML"));
        match (key.required, result) {
            (true, Err(e)) => assert!(
                e.to_string().contains(&format!("missing field `{name}`")),
                "{}: {e}",
                key.path
            ),
            (true, Ok(_)) => panic!(
                "{}: required in docs/bundle.md, not by the engine",
                key.path
            ),
            (false, Err(e)) => panic!("{}: optional in docs/bundle.md, but: {e}", key.path),
            (false, Ok(_)) => {}
        }
    }
}

#[test]
fn tables_that_are_not_free_form_refuse_unknown_keys() {
    let text = page();
    let mut unknown = vec!["not_a_key".to_owned()];
    unknown.extend(
        key_table(&text)
            .into_iter()
            .filter_map(|k| match k.kind.as_str() {
                "table" => Some(format!("{}.not_a_key", k.path)),
                "array of tables" => Some(format!("{}[].not_a_key", k.path)),
                _ => None,
            }),
    );
    assert!(unknown.len() > 4, "{unknown:?}");
    for path in unknown {
        let mut doc = example(&text);
        let (tables, name) = tables_of(&mut doc, &path);
        for table in tables {
            table.insert(name.clone(), Value::Integer(1));
        }
        let result = Manifest::from_toml(&toml::to_string(&doc).expect("TOML"));
        let Err(e) = result else {
            panic!("{path}: an unknown key is accepted");
        };
        assert!(
            e.to_string().contains("unknown field `not_a_key`"),
            "{path}: {e}"
        );
    }
}

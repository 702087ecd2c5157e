//! A YAML document as a tree in which every node and every mapping key keeps its location.
//!
//! serde-saphyr parses; we deserialize into this generic tree (rather than straight into the
//! manifest structs) so that validation can see every key, report *all* mistakes at once with
//! their positions, and never stop at the first unknown field the way `#[derive(Deserialize)]`
//! would.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::diagnostic::Span;

/// Hard limits on what the parser accepts, so that no input can make it hang or exhaust memory.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of mappings and sequences accepted in a manifest. The parser recurses per
/// level, about 40 KB of stack a level in a debug build: 32 levels stay within a 2 MiB thread
/// stack (tokio's default, a test thread's), where 53 levels of compact mappings (`: : : …`)
/// overflowed it (a fuzzing finding). A manifest needs about six.
pub const MAX_DEPTH: usize = 32;
/// Deepest nesting of flow collections (`[..]`, `{..}`) accepted in a manifest. Lower than
/// [`MAX_DEPTH`]: inside a flow sequence every `key: value` is a mapping of its own, so each
/// `[` can cost two levels of the parser's recursion, and 33 of them overflowed a 2 MiB thread
/// stack in a debug build (a fuzzing finding). A manifest needs two or three (`enum: [a, b]`).
pub const MAX_FLOW_DEPTH: usize = 16;

/// A located YAML node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub value: Value,
    /// Where it starts.
    pub span: Span,
}

/// A mapping key and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key's text (non-string scalar keys are kept as written, e.g. `1`).
    pub name: String,
    /// Where the key is.
    pub span: Span,
}

/// The content of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer (i128 holds every i64 and u64).
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// A string scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order, duplicates kept (validation reports them).
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// A short description used in "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The node as a string scalar, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Why a document could not be read as YAML at all.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// The parser's message.
    pub message: String,
    /// Where the parser stopped (line 1, column 1 when it did not say).
    pub span: Span,
}

/// Parses `source` into a located tree. The empty document is `Null`.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    if source.len() > MAX_MANIFEST_BYTES {
        return Err(SyntaxError {
            message: format!(
                "the manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES} bytes",
                source.len()
            ),
            span: Span::new(1, 1, 0),
        });
    }
    if source.trim().is_empty() {
        return Ok(Node {
            value: Value::Null,
            span: Span::new(1, 1, 0),
        });
    }
    if let Some(line) = too_deep(source) {
        return Err(SyntaxError {
            message: format!("the manifest nests deeper than {MAX_DEPTH} levels"),
            span: Span::new(line, 1, 1),
        });
    }
    let mut options = serde_saphyr::Options::default();
    // We report duplicate keys ourselves, all of them, with both locations.
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    // YAML 1.2 booleans only: `y`, `no`, `on` stay strings (enum values, categories).
    options.strict_booleans = true;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_FLOW_DEPTH;
    // A manifest needs few anchors; this stops alias bombs early.
    budget.max_aliases = 1_000;
    options.budget = Some(budget);
    match serde_saphyr::from_str_with_options::<Spanned<Tree>>(source, options) {
        Ok(tree) => Ok(into_node(tree)),
        Err(err) => {
            let span = err
                .location()
                .filter(|l| l.line() > 0)
                .map(span_of)
                .unwrap_or(Span::new(1, 1, 0));
            Err(SyntaxError {
                message: syntax_message(&err),
                span,
            })
        }
    }
}

/// A conservative estimate of block nesting (indentation levels and `- ` markers), checked
/// before parsing because the parser recurses once per level. Returns the first line that
/// goes deeper than [`MAX_DEPTH`]. Flow nesting (`[[[`) is capped by the parser's budget.
fn too_deep(source: &str) -> Option<usize> {
    let mut indents: Vec<usize> = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let trimmed = line.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        while indents.last().is_some_and(|&top| top >= indent) {
            indents.pop();
        }
        indents.push(indent);
        let dashes = trimmed
            .split_inclusive(' ')
            .take_while(|w| w.trim_end() == "-")
            .count();
        if indents.len() + dashes > MAX_DEPTH {
            return Some(i + 1);
        }
    }
    None
}

fn syntax_message(err: &serde_saphyr::Error) -> String {
    // `without_snippet` + first line: the rendered form carries its own snippet and location,
    // which our diagnostics add in the project's one format.
    let rendered = err.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let first = first
        .split(" at line ")
        .next()
        .unwrap_or(first)
        .trim_end_matches(['.', ',', ':']);
    if first.is_empty() {
        "invalid YAML".to_owned()
    } else {
        first.to_owned()
    }
}

fn span_of(loc: Location) -> Span {
    let len = loc.span().len().max(1) as usize;
    Span::new(loc.line() as usize, loc.column() as usize, len)
}

/// The serde view of a node; converted to [`Node`] after parsing.
struct Tree(Value);

fn into_node(tree: Spanned<Tree>) -> Node {
    Node {
        value: tree.value.0,
        span: span_of(tree.referenced),
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor).map(Tree)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        i128::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Tree>>()? {
            items.push(into_node(item));
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let value = map.next_value::<Spanned<Tree>>()?;
            entries.push((
                Key {
                    name: key.value.0,
                    span: span_of(key.referenced),
                },
                into_node(value),
            ));
        }
        Ok(Value::Map(entries))
    }
}

/// A mapping key: any scalar, kept as text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".to_owned()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

//! How manifest names become identifiers in generated code.

use heck::{ToSnakeCase, ToUpperCamelCase};

/// Rust keywords that are valid raw identifiers (`r#type`).
const RUST_KEYWORDS: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "static",
    "struct",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "union",
    "macro_rules",
    "raw",
    "safe",
];

/// Keywords that cannot be raw identifiers; they get a trailing underscore instead.
const RUST_UNRAWABLE: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Type names the generated Rust module defines itself.
const RUST_RESERVED_TYPE_NAMES: &[&str] = &["EventBus", "Self"];

/// Whether a manifest type (declared or inline) would clash with a name the generated modules
/// define themselves: Rust's `EventBus` (and `Self`), and the fixed names of the TypeScript
/// module ([`crate::typescript::RESERVED_TYPE_NAMES`]).
///
/// ```
/// use eventbus_codegen::names::is_reserved_type_name;
/// assert!(is_reserved_type_name("EventBus") && is_reserved_type_name("EventMap"));
/// assert!(!is_reserved_type_name("PackageEvent"));
/// ```
pub fn is_reserved_type_name(name: &str) -> bool {
    RUST_RESERVED_TYPE_NAMES.contains(&name)
        || crate::typescript::RESERVED_TYPE_NAMES.contains(&name)
}

/// The snake_case Rust name of a field or event (`dnpName` → `dnp_name`), before keyword
/// escaping. Used for collision checks.
pub fn snake(name: &str) -> String {
    name.to_snake_case()
}

/// The PascalCase form of a name (`chainSync` → `ChainSync`, `config-change` → `ConfigChange`).
pub fn pascal(name: &str) -> String {
    name.to_upper_camel_case()
}

/// A snake_case name made safe as a Rust identifier: `r#type`, `self_`.
pub fn rust_ident(snake: &str) -> proc_macro2::Ident {
    if RUST_UNRAWABLE.contains(&snake) {
        proc_macro2::Ident::new(&format!("{snake}_"), proc_macro2::Span::call_site())
    } else if RUST_KEYWORDS.contains(&snake) {
        proc_macro2::Ident::new_raw(snake, proc_macro2::Span::call_site())
    } else {
        proc_macro2::Ident::new(snake, proc_macro2::Span::call_site())
    }
}

/// The Rust field identifier for a manifest field or event name.
pub fn field_ident(name: &str) -> proc_macro2::Ident {
    rust_ident(&snake(name))
}

/// The Rust variant name of an enum value: PascalCase, prefixed with `V` when it would start
/// with a digit (`1x` → `V1x`).
pub fn variant_name(value: &str) -> String {
    let p = pascal(value);
    if p.starts_with(|c: char| c.is_ascii_digit()) || p.is_empty() {
        format!("V{p}")
    } else if p == "Self" {
        // The one PascalCase keyword; it cannot be a raw identifier.
        "Self_".to_owned()
    } else {
        p
    }
}

/// The name of the type made from an event's inline payload (`chainSync` → `ChainSync`).
pub fn inline_type_name(event: &str) -> String {
    pascal(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_stay_usable() {
        assert_eq!(field_ident("type").to_string(), "r#type");
        assert_eq!(field_ident("self").to_string(), "self_");
        assert_eq!(field_ident("dnpName").to_string(), "dnp_name");
        assert_eq!(variant_name("config-change"), "ConfigChange");
        assert_eq!(variant_name("1x"), "V1x");
    }
}

//! The type expressions of the manifest: `string`, `f64?`, `string[]`, `map<u64>`, `PackageEvent`.

use crate::model::{Primitive, TypeRef};

/// A parsed type expression; named types are not resolved yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeExpr {
    /// The type.
    pub ty: TypeRef,
    /// A trailing `?`.
    pub optional: bool,
}

/// Why a type expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeExprError {
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub help: String,
}

/// Parses a type expression.
///
/// ```
/// use eventbus_codegen::type_expr::parse;
/// use eventbus_codegen::{Primitive, TypeRef};
/// let e = parse("map<u64[]>?").unwrap();
/// assert!(e.optional);
/// assert_eq!(e.ty, TypeRef::Map(Box::new(TypeRef::List(Box::new(TypeRef::Primitive(Primitive::U64))))));
/// assert!(parse("string?[]").is_err());
/// ```
pub fn parse(text: &str) -> Result<TypeExpr, TypeExprError> {
    let text = text.trim();
    let (body, optional) = match text.strip_suffix('?') {
        Some(body) => (body.trim_end(), true),
        None => (text, false),
    };
    Ok(TypeExpr {
        ty: parse_inner(body, text)?,
        optional,
    })
}

fn parse_inner(text: &str, whole: &str) -> Result<TypeRef, TypeExprError> {
    let text = text.trim();
    if text.contains('?') {
        return Err(TypeExprError {
            message: format!("`?` may only end a field's type, found `{whole}`"),
            help: "optional applies to a whole field: write `string[]?`, not `string?[]`".into(),
        });
    }
    if let Some(item) = text.strip_suffix("[]") {
        return Ok(TypeRef::List(Box::new(parse_inner(item, whole)?)));
    }
    if let Some(rest) = text.strip_prefix("map<") {
        return match rest.strip_suffix('>') {
            Some(value) => Ok(TypeRef::Map(Box::new(parse_inner(value, whole)?))),
            None => Err(TypeExprError {
                message: format!("unclosed `map<` in `{whole}`"),
                help: "write `map<string>`: an object with string keys and string values".into(),
            }),
        };
    }
    if let Some(p) = Primitive::parse(text) {
        return Ok(TypeRef::Primitive(p));
    }
    let is_ident = text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if is_ident {
        Ok(TypeRef::Named(text.to_owned()))
    } else {
        Err(TypeExprError {
            message: format!("`{whole}` is not a type expression"),
            help: "a type is a primitive (string, bool, i32, u64, f64, timestamp, json, ...), a \
                   name from `types`, `T[]`, `map<T>`, with `?` at the end for optional fields"
                .into(),
        })
    }
}

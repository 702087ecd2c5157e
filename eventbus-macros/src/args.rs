//! The attribute's arguments: `("events.yaml", events = ["a"], categories = ["b"])`.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::{Expr, Ident, Lit, LitStr, Token};

/// The options the attribute accepts besides the path, with the form of their value.
pub(crate) const OPTIONS: &[(&str, &str)] = &[
    ("events", r#"events = ["packageInstall", ..]"#),
    ("categories", r#"categories = ["chain", ..]"#),
];

/// What the user wrote, with spans for error reports.
pub(crate) struct Args {
    /// The manifest path literal, relative to `CARGO_MANIFEST_DIR`.
    pub path: LitStr,
    /// `events = [..]`: keep only these events.
    pub events: Option<NameList>,
    /// `categories = [..]`: keep only the events of these categories.
    pub categories: Option<NameList>,
}

/// A `key = ["a", "b"]` option.
pub(crate) struct NameList {
    pub names: Vec<LitStr>,
}

impl NameList {
    pub fn values(&self) -> Vec<String> {
        self.names.iter().map(LitStr::value).collect()
    }
}

/// Lists the options for error messages: `` `events = [..]`, `categories = [..]` ``.
pub(crate) fn known_options() -> String {
    OPTIONS
        .iter()
        .map(|(_, form)| format!("`{form}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn parse(attr: TokenStream) -> syn::Result<Args> {
    if attr.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            "missing manifest path: write `#[event_bus(\"events.yaml\")]` \
             (the path is relative to the crate root, CARGO_MANIFEST_DIR)",
        ));
    }
    Parser::parse2(parse_args, attr)
}

fn parse_args(input: ParseStream) -> syn::Result<Args> {
    let mut path: Option<LitStr> = None;
    let mut events = None;
    let mut categories = None;
    while !input.is_empty() {
        match input.parse::<Entry>()? {
            Entry::Path(lit) => {
                if path.is_some() {
                    return Err(syn::Error::new(
                        lit.span(),
                        "the manifest path is given twice: one `#[event_bus]` reads one manifest \
                         (use a second module for a second manifest)",
                    ));
                }
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        lit.span(),
                        "the manifest path is empty: write the path of the manifest relative to \
                         the crate root, like `\"events.yaml\"`",
                    ));
                }
                path = Some(lit);
            }
            Entry::Option(key, list) => {
                let slot = match key.to_string().as_str() {
                    "events" => &mut events,
                    "categories" => &mut categories,
                    _ => unreachable!("Entry::parse only accepts known options"),
                };
                if slot.is_some() {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("`{key}` is given twice: put every name in one list"),
                    ));
                }
                *slot = Some(list);
            }
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected `,` between the arguments of `#[event_bus]`",
            )
        })?;
    }
    let path = path.ok_or_else(|| {
        syn::Error::new(
            Span::call_site(),
            "missing manifest path: the first argument of `#[event_bus]` is the manifest path, \
             like `#[event_bus(\"events.yaml\", ..)]`",
        )
    })?;
    Ok(Args {
        path,
        events,
        categories,
    })
}

enum Entry {
    Path(LitStr),
    Option(Ident, NameList),
}

impl Parse for Entry {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Lit) {
            return match input.parse::<Lit>()? {
                Lit::Str(lit) => Ok(Entry::Path(lit)),
                other => Err(syn::Error::new(
                    other.span(),
                    "the manifest path must be a string literal, like `\"events.yaml\"`",
                )),
            };
        }
        if !input.peek(Ident) {
            return Err(input.error(format!(
                "expected the manifest path as a string literal (`\"events.yaml\"`) or an \
                 option: {}",
                known_options()
            )));
        }
        let key: Ident = input.parse()?;
        if input.peek(Token![!]) {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "the manifest path must be a string literal: `{key}!(..)` is not expanded in \
                     the arguments of an attribute"
                ),
            ));
        }
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "expected the manifest path as a string literal, like `\"events.yaml\"`, \
                     found `{key}`"
                ),
            ));
        }
        let name = key.to_string();
        let Some((_, form)) = OPTIONS.iter().find(|(known, _)| *known == name) else {
            let hint =
                eventbus_codegen::did_you_mean(&name, OPTIONS.iter().map(|(known, _)| *known))
                    .map(|known| format!("; did you mean `{known}`?"))
                    .unwrap_or_default();
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown option `{key}` of `#[event_bus]`{hint}\n  = note: the options are \
                     {}",
                    known_options()
                ),
            ));
        };
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse().map_err(|e| {
            syn::Error::new(e.span(), format!("expected a list of names: `{form}`"))
        })?;
        let Expr::Array(array) = value else {
            return Err(syn::Error::new_spanned(
                value,
                format!("`{key}` takes a list of names in brackets: `{form}`"),
            ));
        };
        let mut names = Vec::new();
        for elem in &array.elems {
            match elem {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(lit), ..
                }) if !lit.value().is_empty() => names.push(lit.clone()),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        format!(
                            "expected a name from the manifest as a non-empty string literal: \
                             `{form}`"
                        ),
                    ));
                }
            }
        }
        if names.is_empty() {
            return Err(syn::Error::new_spanned(
                array,
                format!(
                    "`{key} = []` selects nothing: name at least one, or remove the option to \
                     keep every event"
                ),
            ));
        }
        Ok(Entry::Option(key, NameList { names }))
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn err(attr: TokenStream) -> String {
        match parse(attr) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_the_path_and_options_in_any_order() {
        let args = parse(quote!(events = ["a"], "m.yaml", categories = ["x", "y"],)).unwrap();
        assert_eq!(args.path.value(), "m.yaml");
        assert_eq!(args.events.unwrap().values(), ["a"]);
        assert_eq!(args.categories.unwrap().values(), ["x", "y"]);
    }

    #[test]
    fn misuse_is_explained() {
        assert!(err(quote!()).starts_with("missing manifest path"));
        assert!(err(quote!(events = ["a"])).starts_with("missing manifest path"));
        assert!(err(quote!(42)).contains("must be a string literal"));
        assert!(err(quote!(concat!("a", "b"))).contains("is not expanded"));
        assert!(err(quote!("a.yaml", "b.yaml")).contains("given twice"));
        assert!(err(quote!("a.yaml", evnts = ["a"])).contains("did you mean `events`?"));
        assert!(err(quote!("a.yaml", events = "a")).contains("takes a list"));
        assert!(err(quote!("a.yaml", events = [a])).contains("non-empty string literal"));
        assert!(err(quote!("a.yaml", events = [])).contains("selects nothing"));
        assert!(err(quote!("a.yaml", events = ["a"], events = ["b"])).contains("given twice"));
        assert!(err(quote!("a.yaml" events = ["a"])).contains("expected `,`"));
        assert!(err(quote!("")).contains("path is empty"));
    }
}

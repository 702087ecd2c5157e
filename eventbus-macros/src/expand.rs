//! The expansion: a thin shell around `eventbus-codegen` that maps the attribute onto
//! [`Settings`], reports every failure as a spanned `compile_error!`, and keeps the user's
//! items.

use std::path::{Component, Path, PathBuf};

use eventbus_codegen::model::TypeOrigin;
use eventbus_codegen::{Diagnostic, Model, Settings, rust};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{AttrStyle, Item, ItemMod, LitStr};

use crate::args::{self, Args, NameList};
use crate::names;

/// Expands `#[event_bus(attr)] item` for the crate being compiled (its `CARGO_MANIFEST_DIR`).
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    expand_in(attr, item, dir.as_deref())
}

/// Expands with manifest paths resolved against `manifest_dir` (`None`: not built by cargo).
pub(crate) fn expand_in(
    attr: TokenStream,
    item: TokenStream,
    manifest_dir: Option<&Path>,
) -> TokenStream {
    let module = match parse_module(item) {
        Ok(module) => module,
        Err(tokens) => return tokens,
    };
    let mut out = Expansion::default();
    if let Err(errors) = out.generate(attr, &module, manifest_dir) {
        out.errors = errors;
        out.generated = TokenStream::new();
    }
    out.emit(module)
}

/// What goes into the module besides the user's items.
#[derive(Default)]
struct Expansion {
    /// The generated items (empty when anything failed).
    generated: TokenStream,
    /// The manifest file, once it is known to exist: included so that editing it rebuilds.
    tracked: Option<PathBuf>,
    /// One `compile_error!` each.
    errors: Vec<syn::Error>,
}

impl Expansion {
    fn generate(
        &mut self,
        attr: TokenStream,
        module: &ItemMod,
        manifest_dir: Option<&Path>,
    ) -> Result<(), Vec<syn::Error>> {
        let args = args::parse(attr).map_err(|e| vec![e])?;
        let path = &args.path;
        let Some(dir) = manifest_dir else {
            return Err(vec![syn::Error::new(
                path.span(),
                "CARGO_MANIFEST_DIR is not set, so the manifest path cannot be resolved: \
                 build the crate with cargo (the path is relative to the crate root)",
            )]);
        };
        let file = locate(path, dir)?;
        let source = read(path, &file, dir)?;
        self.tracked = Some(file.clone());
        let shown = display_path(&file);

        let model = Model::parse(&file, &source).map_err(|err| {
            let errors: Vec<_> = err
                .errors()
                .map(|d| syn::Error::new(path.span(), diagnostic_text(d, &shown, &source)))
                .collect();
            if errors.is_empty() {
                // The core promises at least one error; never fail silently if it did not.
                vec![syn::Error::new(path.span(), err.to_string())]
            } else {
                errors
            }
        })?;
        let settings = Settings {
            events: args.events.as_ref().map(NameList::values),
            categories: args.categories.as_ref().map(NameList::values),
        };
        let model = settings
            .apply(&model)
            .map_err(|message| selection_errors(&args, &model, &shown, message))?;
        let generated = rust::tokens(&model);

        let user_items = module.content.as_ref().map_or(&[][..], |(_, items)| items);
        let clashes = clashes(&model, &generated, user_items, &shown);
        if !clashes.is_empty() {
            return Err(clashes);
        }
        self.generated = generated;
        Ok(())
    }

    /// The errors, then the module: generated items, the hidden `include_str!`, the user's
    /// items. The module is emitted even on errors, so code that names it or its user items
    /// does not add unrelated errors.
    fn emit(self, module: ItemMod) -> TokenStream {
        let ItemMod {
            attrs,
            vis,
            unsafety,
            mod_token,
            ident,
            content,
            ..
        } = module;
        let (inner, outer): (Vec<_>, Vec<_>) = attrs
            .into_iter()
            .partition(|a| matches!(a.style, AttrStyle::Inner(_)));
        // Always `Some`: `parse_module` only accepts inline modules.
        let (brace, items) = content.unwrap_or_default();
        let errors = self.errors.iter().map(syn::Error::to_compile_error);
        let tracked = self.tracked.as_deref().and_then(Path::to_str).map(|path| {
            let path = LitStr::new(path, Span::call_site());
            quote! { const _: &str = ::core::include_str!(#path); }
        });
        let generated = self.generated;
        let mut out = quote! {
            #(#errors)*
            #(#outer)*
            #vis #unsafety #mod_token #ident
        };
        brace.surround(&mut out, |body| {
            body.extend(quote! {
                #(#inner)*
                #generated
                #tracked
                #(#items)*
            });
        });
        out
    }
}

/// The annotated item as a module with a body, or the tokens to emit instead: the error, and
/// the item unchanged (so that code using it reports no second error).
fn parse_module(item: TokenStream) -> Result<ItemMod, TokenStream> {
    let fail = |span: Span, message: String, keep: TokenStream| {
        let error = syn::Error::new(span, message).to_compile_error();
        quote! { #error #keep }
    };
    let parsed = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(_) => {
            let span = item
                .clone()
                .into_iter()
                .next()
                .map_or_else(Span::call_site, |t| t.span());
            return Err(fail(span, not_a_module("this item"), item));
        }
    };
    match parsed {
        Item::Mod(module) if module.content.is_some() => Ok(module),
        Item::Mod(module) => Err(fail(
            module.ident.span(),
            format!(
                "`#[event_bus]` needs a module with a body: write `mod {} {{}}` (the generated \
                 items go inside the braces, next to your own)",
                module.ident
            ),
            TokenStream::new(),
        )),
        other => {
            let (what, span) = describe(&other);
            Err(fail(span, not_a_module(what), item))
        }
    }
}

fn not_a_module(what: &str) -> String {
    format!(
        "`#[event_bus]` applies to a module, not to {what}: write \
         `#[event_bus(\"events.yaml\")] pub mod events {{}}` and the generated items go inside"
    )
}

/// What kind of item this is, and where its name is.
fn describe(item: &Item) -> (&'static str, Span) {
    match item {
        Item::Fn(i) => ("a function", i.sig.ident.span()),
        Item::Struct(i) => ("a struct", i.ident.span()),
        Item::Enum(i) => ("an enum", i.ident.span()),
        Item::Union(i) => ("a union", i.ident.span()),
        Item::Trait(i) => ("a trait", i.ident.span()),
        Item::Type(i) => ("a type alias", i.ident.span()),
        Item::Const(i) => ("a constant", i.ident.span()),
        Item::Static(i) => ("a static", i.ident.span()),
        Item::Impl(i) => ("an impl block", i.impl_token.span),
        Item::Use(i) => ("a `use` item", i.use_token.span),
        other => ("this item", other.span()),
    }
}

/// The manifest file: `path` joined to the crate root, which must be an existing file.
fn locate(path: &LitStr, dir: &Path) -> Result<PathBuf, Vec<syn::Error>> {
    let joined = dir.join(path.value());
    if joined.is_file() {
        return Ok(joined.canonicalize().unwrap_or(joined));
    }
    let resolved = normalize(&joined);
    let mut message = if joined.is_dir() {
        format!(
            "`{}` is a directory, not a manifest file",
            resolved.display()
        )
    } else {
        format!(
            "manifest not found: `{}` does not exist",
            resolved.display()
        )
    };
    message.push_str(&format!(
        "\n  = note: the path is relative to the crate root, CARGO_MANIFEST_DIR = `{}`",
        dir.display()
    ));
    if let Some(hint) = similar_files(&resolved, joined.is_dir()) {
        message.push_str(&format!("\n  = help: {hint}"));
    }
    Err(vec![syn::Error::new(path.span(), message)])
}

/// Suggests manifests next to the missing one (or inside the directory that was named).
fn similar_files(resolved: &Path, is_dir: bool) -> Option<String> {
    let dir = if is_dir { resolved } else { resolved.parent()? };
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    if found.is_empty() {
        return None;
    }
    found.sort();
    found.truncate(5);
    let list = found
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!("manifests in `{}`: {list}", dir.display()))
}

/// Reads the manifest text; failures name the file and the crate root.
fn read(path: &LitStr, file: &Path, dir: &Path) -> Result<String, Vec<syn::Error>> {
    let fail = |what: String| {
        vec![syn::Error::new(
            path.span(),
            format!(
                "{what}\n  = note: the path is relative to the crate root, CARGO_MANIFEST_DIR = \
                 `{}`",
                dir.display()
            ),
        )]
    };
    eventbus_codegen::read_manifest(file).map_err(fail)
}

/// `a/./b/../c` → `a/c`, without touching the file system (for paths that do not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The manifest path as rustc shows source paths: relative to the directory it runs in (the
/// workspace root under cargo), else absolute.
fn display_path(file: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            let cwd = cwd.canonicalize().unwrap_or(cwd);
            file.strip_prefix(cwd).ok().map(Path::to_path_buf)
        })
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| file.to_path_buf())
        .display()
        .to_string()
}

/// A manifest finding as the text of a `compile_error!`: `path:line:column: message` first (the
/// line editors and CI annotations show), then rustc's snippet with carets and the hint.
fn diagnostic_text(d: &Diagnostic, shown: &str, source: &str) -> String {
    let rendered = d.render(shown, source);
    // Skip `error: message` and ` --> path:line:column`: the first line says both.
    let rest: Vec<&str> = rendered.lines().skip(2).collect();
    let mut text = format!("{shown}:{}:{}: {}", d.span.line, d.span.column, d.message);
    for line in rest {
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// Errors for names in `events = [..]` / `categories = [..]` that the manifest lacks, each at
/// its literal. `message` is the core's own report, used if no literal can be blamed.
fn selection_errors(args: &Args, model: &Model, shown: &str, message: String) -> Vec<syn::Error> {
    let events: Vec<&str> = model.events.iter().map(|e| e.name.as_str()).collect();
    let categories = model.categories();
    let mut errors = Vec::new();
    let mut check = |list: &Option<NameList>, what: &str, whats: &str, known: &[&str]| {
        for lit in list.iter().flat_map(|l| &l.names) {
            let name = lit.value();
            if known.contains(&name.as_str()) {
                continue;
            }
            let hint = eventbus_codegen::did_you_mean(&name, known.iter().copied())
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            let list = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            errors.push(syn::Error::new(
                lit.span(),
                format!("no {what} `{name}` in `{shown}`{hint}\n  = note: its {whats}: {list}"),
            ));
        }
    };
    check(&args.events, "event", "events", &events);
    check(&args.categories, "category", "categories", &categories);
    if errors.is_empty() {
        errors.push(syn::Error::new(args.path.span(), message));
    }
    errors
}

/// User items whose names the generated code also defines, each reported at the user's item.
fn clashes(model: &Model, generated: &TokenStream, user: &[Item], shown: &str) -> Vec<syn::Error> {
    let Ok(file) = syn::parse2::<syn::File>(generated.clone()) else {
        return Vec::new();
    };
    let taken: Vec<(String, names::Ns)> = file
        .items
        .iter()
        .flat_map(names::defined)
        .map(|(ident, ns)| (ident.unraw().to_string(), ns))
        .collect();
    let mut errors = Vec::new();
    for item in user {
        for (ident, ns) in names::defined(item) {
            let name = ident.unraw().to_string();
            if taken.iter().any(|(t, tns)| *t == name && tns.overlaps(ns)) {
                errors.push(syn::Error::new(
                    ident.span(),
                    clash_message(model, &name, shown),
                ));
            }
        }
    }
    errors
}

fn clash_message(model: &Model, name: &str, shown: &str) -> String {
    let def = model.type_def(name);
    let what = match (name, def.map(|t| &t.origin)) {
        (_, Some(TypeOrigin::InlinePayload(event))) => {
            format!("the payload type of the event `{event}` of `{shown}`")
        }
        (_, Some(TypeOrigin::Declared)) => format!("a type of `{shown}`"),
        ("EventBus", None) => "the typed bus".to_owned(),
        ("MANIFEST", None) => format!("`static MANIFEST`, the metadata of `{shown}`"),
        _ => format!("an item generated from `{shown}`"),
    };
    let help = if def.is_some() {
        format!(
            "rename this item; to add methods to the generated type, write `impl {name} {{ .. }}` \
             in this module instead"
        )
    } else {
        "rename this item".to_owned()
    };
    format!(
        "`{name}` is defined twice: `#[event_bus]` generates it in this module, as {what}\n  = \
         help: {help}"
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use quote::{ToTokens, quote};

    use super::*;

    fn crate_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// The generated items of an expansion (the hidden `include_str!` left out), formatted
    /// like the build script's output file.
    fn macro_output(attr: TokenStream) -> String {
        let out = expand_in(
            attr,
            quote!(
                pub mod events {}
            ),
            Some(crate_dir()),
        );
        let module: ItemMod = syn::parse2(out.clone()).unwrap_or_else(|e| panic!("{e}: {out}"));
        let items = module.content.unwrap().1;
        let mut kept = Vec::new();
        let mut hidden = 0;
        for item in items {
            match &item {
                // Only the macro's own hidden const; the generator's `const _` checks are part of
                // the generated code and must match the build script's output.
                Item::Const(c)
                    if c.ident == "_"
                        && c.expr.to_token_stream().to_string().contains("include_str") =>
                {
                    hidden += 1;
                }
                _ => kept.push(item),
            }
        }
        assert_eq!(hidden, 1, "one hidden include_str! per module");
        assert!(!kept.is_empty(), "the expansion failed: {out}");
        rust::format_tokens(quote!(#(#kept)*))
    }

    /// What the build-script route writes to OUT_DIR for the same manifest and selection.
    fn builder_output(manifest: &Path, events: &[&str], categories: &[&str]) -> String {
        let dir = std::env::temp_dir().join(format!(
            "eventbus-macros-{}-{}",
            std::process::id(),
            manifest.file_stem().unwrap().to_string_lossy()
        ));
        let mut builder = eventbus_codegen::Builder::new(manifest).out_dir(&dir);
        if !events.is_empty() {
            builder = builder.events(events.iter().copied());
        }
        if !categories.is_empty() {
            builder = builder.categories(categories.iter().copied());
        }
        let written = builder.build().unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&written).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        text
    }

    #[test]
    fn both_front_ends_generate_the_same_code() {
        let golden = crate_dir().join("../tests/golden");
        let mut manifests: Vec<PathBuf> = std::fs::read_dir(&golden)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        manifests.sort();
        manifests.push(crate_dir().join("../events.yaml"));
        manifests.push(crate_dir().join("events.yaml"));
        assert!(manifests.len() >= 4, "{manifests:?}");
        for manifest in &manifests {
            let lit = manifest.to_str().unwrap();
            assert_eq!(
                macro_output(quote!(#lit)),
                builder_output(manifest, &[], &[]),
                "{lit}"
            );
        }
    }

    #[test]
    fn both_front_ends_select_the_same_subset() {
        let manifest = crate_dir().join("../events.yaml");
        let lit = manifest.to_str().unwrap();
        let from_macro =
            macro_output(quote!(#lit, events = ["packageInstall"], categories = ["chain"]));
        assert_eq!(
            from_macro,
            builder_output(&manifest, &["packageInstall"], &["chain"])
        );
        assert!(
            from_macro.contains("pub package_install: ::eventbus::PersistedEvent<PackageEvent>")
        );
        assert!(from_macro.contains("pub chain_sync:"));
        assert!(!from_macro.contains("pub notification:"));
        assert!(!from_macro.contains("pub struct NotificationEvent"));
    }

    #[test]
    fn relative_paths_resolve_against_the_crate_root() {
        let out = macro_output(quote!("events.yaml"));
        assert!(out.contains("pub struct EventBus"));
        let out = expand_in(
            quote!("events.yaml"),
            quote!(
                mod m {}
            ),
            Some(crate_dir()),
        );
        let abs = crate_dir().join("events.yaml").canonicalize().unwrap();
        let abs = LitStr::new(abs.to_str().unwrap(), Span::call_site());
        assert!(out.to_string().contains(&abs.to_token_stream().to_string()));
    }

    #[test]
    fn user_items_and_attributes_are_kept() {
        let out = expand_in(
            quote!("events.yaml"),
            quote! {
                /// Outer docs.
                #[allow(dead_code)]
                pub(crate) mod events {
                    #![allow(clippy::all)]
                    impl PackageEvent { fn is_done(&self) -> bool { true } }
                    fn helper() {}
                }
            },
            Some(crate_dir()),
        );
        let module: ItemMod = syn::parse2(out).unwrap();
        assert_eq!(module.ident, "events");
        assert_eq!(module.attrs.len(), 3);
        assert!(matches!(module.attrs[2].style, AttrStyle::Inner(_)));
        let items = module.content.unwrap().1;
        let last: Vec<String> = items[items.len() - 2..]
            .iter()
            .map(|i| i.to_token_stream().to_string())
            .collect();
        assert!(last[0].starts_with("impl PackageEvent"), "{last:?}");
        assert!(last[1].starts_with("fn helper"), "{last:?}");
    }

    fn errors_of(attr: TokenStream, item: TokenStream) -> Vec<String> {
        let out = expand_in(attr, item, Some(crate_dir()));
        let file: syn::File = syn::parse2(out).unwrap();
        file.items
            .iter()
            .filter_map(|i| match i {
                Item::Macro(m)
                    if m.mac
                        .path
                        .segments
                        .last()
                        .is_some_and(|s| s.ident == "compile_error") =>
                {
                    Some(m.mac.parse_body::<LitStr>().unwrap().value())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn failures_are_compile_errors_not_panics() {
        let m = quote!(
            mod events {}
        );
        let one = |attr, item| {
            let errors = errors_of(attr, item);
            assert_eq!(errors.len(), 1, "{errors:?}");
            errors.into_iter().next().unwrap()
        };
        assert!(
            one(
                quote!("events.yaml"),
                quote!(
                    fn f() {}
                )
            )
            .contains("not to a function")
        );
        assert!(
            one(
                quote!("events.yaml"),
                quote!(
                    mod events;
                )
            )
            .contains("needs a module with a body")
        );
        assert!(one(quote!(), m.clone()).starts_with("missing manifest path"));
        let missing = one(quote!("nope/missing.yaml"), m.clone());
        assert!(missing.contains("manifest not found"), "{missing}");
        assert!(missing.contains(&crate_dir().join("nope/missing.yaml").display().to_string()));
        assert!(missing.contains("CARGO_MANIFEST_DIR"));
        assert!(one(quote!("src"), m.clone()).contains("is a directory"));
        let unknown = one(quote!("events.yaml", events = ["packageInstal"]), m.clone());
        assert!(
            unknown.contains("did you mean `packageInstall`?"),
            "{unknown}"
        );
        let clash = one(
            quote!("events.yaml"),
            quote!(
                mod events {
                    struct EventBus;
                }
            ),
        );
        assert!(clash.contains("`EventBus` is defined twice"), "{clash}");
        // Same name, other namespace: no clash.
        assert!(
            errors_of(
                quote!("events.yaml"),
                quote!(
                    mod events {
                        fn PackageEvent() {}
                    }
                )
            )
            .is_empty()
        );
        let no_dir = expand_in(quote!("events.yaml"), m, None).to_string();
        assert!(no_dir.contains("CARGO_MANIFEST_DIR is not set"));
    }

    #[test]
    fn manifest_findings_carry_location_snippet_and_hint() {
        let broken = crate_dir().join("tests/ui/manifests/unknown_type.yaml");
        let lit = broken.to_str().unwrap();
        let errors = errors_of(
            quote!(#lit),
            quote!(
                mod events {}
            ),
        );
        assert!(errors.len() >= 2, "{errors:?}");
        let first = &errors[0];
        assert!(first.contains("unknown_type.yaml:"), "{first}");
        assert!(first.contains("unknown type"), "{first}");
        assert!(first.contains("^"), "{first}");
        assert!(first.contains("= help: did you mean"), "{first}");
    }
}

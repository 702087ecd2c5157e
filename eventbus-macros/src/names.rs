//! The names items define, by namespace, to find user items that clash with generated ones.

use syn::{Fields, ForeignItem, Ident, Item, UseTree};

/// The namespaces a name lives in. Two items clash when they share a name in one namespace
/// (`struct A {}` and `fn A()` may coexist; `struct A;` and `fn A()` may not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ns {
    pub types: bool,
    pub values: bool,
}

impl Ns {
    const TYPE: Ns = Ns {
        types: true,
        values: false,
    };
    const VALUE: Ns = Ns {
        types: false,
        values: true,
    };
    const BOTH: Ns = Ns {
        types: true,
        values: true,
    };

    pub fn overlaps(self, other: Ns) -> bool {
        (self.types && other.types) || (self.values && other.values)
    }
}

/// The names an item defines in the module it is in. Macro invocations and `impl` blocks
/// define none that can be seen before expansion.
pub(crate) fn defined(item: &Item) -> Vec<(Ident, Ns)> {
    let one = |ident: &Ident, ns| vec![(ident.clone(), ns)];
    let names = match item {
        Item::Struct(s) => match s.fields {
            Fields::Named(_) => one(&s.ident, Ns::TYPE),
            Fields::Unnamed(_) | Fields::Unit => one(&s.ident, Ns::BOTH),
        },
        Item::Enum(i) => one(&i.ident, Ns::TYPE),
        Item::Union(i) => one(&i.ident, Ns::TYPE),
        Item::Trait(i) => one(&i.ident, Ns::TYPE),
        Item::TraitAlias(i) => one(&i.ident, Ns::TYPE),
        Item::Type(i) => one(&i.ident, Ns::TYPE),
        Item::Mod(i) => one(&i.ident, Ns::TYPE),
        Item::ExternCrate(i) => match &i.rename {
            Some((_, rename)) => one(rename, Ns::TYPE),
            None => one(&i.ident, Ns::TYPE),
        },
        Item::Fn(i) => one(&i.sig.ident, Ns::VALUE),
        Item::Const(i) => one(&i.ident, Ns::VALUE),
        Item::Static(i) => one(&i.ident, Ns::VALUE),
        Item::Use(u) => {
            let mut out = Vec::new();
            use_names(&u.tree, None, &mut out);
            out
        }
        Item::ForeignMod(m) => m
            .items
            .iter()
            .flat_map(|f| match f {
                ForeignItem::Fn(f) => one(&f.sig.ident, Ns::VALUE),
                ForeignItem::Static(s) => one(&s.ident, Ns::VALUE),
                ForeignItem::Type(t) => one(&t.ident, Ns::TYPE),
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    };
    names
        .into_iter()
        .filter(|(ident, _)| ident != "_")
        .collect()
}

/// The names a `use` brings in; a glob brings in none that could clash (glob imports are
/// shadowed by items).
fn use_names(tree: &UseTree, parent: Option<&Ident>, out: &mut Vec<(Ident, Ns)>) {
    match tree {
        UseTree::Path(p) => use_names(&p.tree, Some(&p.ident), out),
        UseTree::Name(n) if n.ident == "self" => {
            if let Some(parent) = parent {
                out.push((parent.clone(), Ns::TYPE));
            }
        }
        UseTree::Name(n) => out.push((n.ident.clone(), Ns::BOTH)),
        UseTree::Rename(r) => out.push((r.rename.clone(), Ns::BOTH)),
        UseTree::Glob(_) => {}
        UseTree::Group(g) => {
            for t in &g.items {
                use_names(t, parent, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(src: &str) -> Vec<(String, Ns)> {
        let item: Item = syn::parse_str(src).unwrap();
        defined(&item)
            .into_iter()
            .map(|(i, ns)| (i.to_string(), ns))
            .collect()
    }

    #[test]
    fn namespaces_follow_rust() {
        assert_eq!(names("struct A { x: u8 }"), [("A".into(), Ns::TYPE)]);
        assert_eq!(names("struct A(u8);"), [("A".into(), Ns::BOTH)]);
        assert_eq!(names("struct A;"), [("A".into(), Ns::BOTH)]);
        assert_eq!(names("fn A() {}"), [("A".into(), Ns::VALUE)]);
        assert_eq!(names("const _: u8 = 1;"), []);
        assert_eq!(names("impl A {}"), []);
        assert_eq!(
            names("use a::{b as C, d::{self, E}, f::*};"),
            [
                ("C".into(), Ns::BOTH),
                ("d".into(), Ns::TYPE),
                ("E".into(), Ns::BOTH)
            ]
        );
        assert!(!Ns::TYPE.overlaps(Ns::VALUE));
        assert!(Ns::BOTH.overlaps(Ns::VALUE));
    }
}

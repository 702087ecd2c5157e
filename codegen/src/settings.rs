//! The one settings struct every front-end maps its inputs onto.

use std::collections::HashSet;

use crate::model::{Model, TypeKind, TypeRef};

/// What to generate from a model. The macro's options, the [`crate::Builder`]'s methods and
/// the CLI's flags all end up here.
///
/// ```
/// let model: eventbus_codegen::Model = "version: 1\npackage: demo\nevents:\n  a: { category: x }\n  b: { category: y }\n"
///     .parse().unwrap();
/// let only_x = eventbus_codegen::Settings::default().categories(["x"]).apply(&model).unwrap();
/// assert_eq!(only_x.events.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Keep only these events (by manifest name); `None` keeps all.
    pub events: Option<Vec<String>>,
    /// Keep only events of these categories; `None` keeps all.
    pub categories: Option<Vec<String>>,
}

impl Settings {
    /// Keeps only the named events (combined with [`Settings::categories`] as a union).
    ///
    /// ```
    /// use eventbus_codegen::{Model, Settings};
    ///
    /// let model: Model = "version: 1\npackage: demo\nevents:\n  ping: {}\n  pong: {}\n".parse().unwrap();
    /// let only_ping = Settings::default().events(["ping"]).apply(&model).unwrap();
    /// assert_eq!(only_ping.events.len(), 1);
    ///
    /// let err = Settings::default().events(["pingg"]).apply(&model).unwrap_err();
    /// assert!(err.starts_with("unknown event `pingg` (did you mean `ping`?)"));
    /// ```
    pub fn events<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.events = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Keeps only the events of these categories.
    ///
    /// ```
    /// use eventbus_codegen::{Model, Settings};
    ///
    /// let model: Model = "version: 1\npackage: demo\nevents:\n  a: { category: x }\n  b: { category: y }\n  c: { category: z }\n"
    ///     .parse()
    ///     .unwrap();
    /// // The union of the named events and the categories.
    /// let kept = Settings::default().categories(["x"]).events(["c"]).apply(&model).unwrap();
    /// let names: Vec<_> = kept.events.iter().map(|e| e.name.as_str()).collect();
    /// assert_eq!(names, ["a", "c"]);
    /// ```
    pub fn categories<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.categories = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The model restricted to the selected events and the types they use. Names that match
    /// nothing are an error listing what exists.
    ///
    /// ```
    /// use eventbus_codegen::{Model, Settings};
    ///
    /// let model: Model = "version: 1\npackage: demo\nevents:\n  ping: { payload: { n: u32 } }\n  pong: { payload: { n: u32 } }\n"
    ///     .parse()
    ///     .unwrap();
    /// assert_eq!(model.types.len(), 2);
    ///
    /// // Only the types the kept events use remain.
    /// let ping = Settings::default().events(["ping"]).apply(&model).unwrap();
    /// assert_eq!(ping.types.len(), 1);
    /// assert_eq!(ping.types[0].name, "Ping");
    /// assert_eq!(Settings::default().apply(&model).unwrap(), model); // no selection: everything
    /// ```
    pub fn apply(&self, model: &Model) -> Result<Model, String> {
        if self.events.is_none() && self.categories.is_none() {
            return Ok(model.clone());
        }
        let mut unknown = Vec::new();
        let events: Vec<&str> = model.events.iter().map(|e| e.name.as_str()).collect();
        let categories = model.categories();
        let mut check = |what: &str, name: &str, known: &[&str]| {
            if !known.contains(&name) {
                let hint = crate::did_you_mean(name, known.iter().copied())
                    .map(|m| format!(" (did you mean `{m}`?)"))
                    .unwrap_or_default();
                unknown.push(format!("unknown {what} `{name}`{hint}"));
            }
        };
        for name in self.events.iter().flatten() {
            check("event", name, &events);
        }
        for c in self.categories.iter().flatten() {
            check("category", c, &categories);
        }
        if !unknown.is_empty() {
            return Err(format!(
                "{}; the categories are: {}",
                unknown.join(", "),
                categories.join(", ")
            ));
        }
        let keep = |e: &crate::model::EventDef| {
            self.events.iter().flatten().any(|n| *n == e.name)
                || self.categories.iter().flatten().any(|c| *c == e.category)
        };
        let events: Vec<_> = model.events.iter().filter(|e| keep(e)).cloned().collect();
        // Keep the types reachable from the kept payloads.
        let mut needed: HashSet<String> = HashSet::new();
        let mut stack: Vec<String> = events.iter().filter_map(|e| e.payload.clone()).collect();
        while let Some(name) = stack.pop() {
            if !needed.insert(name.clone()) {
                continue;
            }
            if let Some(TypeKind::Struct(fields)) = model.type_def(&name).map(|t| &t.kind) {
                for f in fields {
                    named_in(&f.ty, &mut stack);
                }
            }
        }
        Ok(Model {
            types: model
                .types
                .iter()
                .filter(|t| needed.contains(&t.name))
                .cloned()
                .collect(),
            events,
            ..model.clone()
        })
    }
}

fn named_in(ty: &TypeRef, out: &mut Vec<String>) {
    match ty {
        TypeRef::Named(n) => out.push(n.clone()),
        TypeRef::List(t) | TypeRef::Map(t) => named_in(t, out),
        TypeRef::Primitive(_) => {}
    }
}

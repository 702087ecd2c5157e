//! Codegen cost: parse + validate, and each generator (Rust, TypeScript, Markdown, AsyncAPI),
//! for generated manifests of 10, 100 and 1,000 events.
//!
//!     cargo bench -p eventbus-codegen --bench codegen

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use eventbus_codegen::{Model, asyncapi, docs, rust, typescript};

/// A manifest of `n` events: a third with a shared named payload, a third with an inline
/// payload of several field shapes, a third without payload; some with policies.
pub fn manifest(n: usize) -> String {
    let mut s = String::from(
        "version: 1\npackage: bench\ntypes:\n  Level:\n    enum: [low, mid, high]\n  Item:\n    description: A shared payload.\n    fields:\n      name: string\n      size: u64\n      tags: string[]\n      level: Level\n      meta: map<string>?\nevents:\n",
    );
    for i in 0..n {
        let _ = write!(
            s,
            "  event{i}:\n    category: c{}\n    description: Event number {i}.\n",
            i % 10
        );
        match i % 3 {
            0 => s.push_str("    payload: Item\n    persist: true\n    ui: to_ui\n"),
            1 => s.push_str(
                "    payload:\n      id: string\n      count: u32\n      ratio: f64?\n      at: timestamp\n      items: Item[]\n    throttle: 500ms\n",
            ),
            _ => s.push_str("    ui: from_ui\n"),
        }
    }
    s
}

fn codegen(c: &mut Criterion) {
    let mut g = c.benchmark_group("codegen");
    for n in [10usize, 100, 1000] {
        let source = manifest(n);
        let model: Model = source.parse().unwrap();
        g.bench_with_input(BenchmarkId::new("parse_validate", n), &source, |b, s| {
            b.iter(|| black_box(Model::parse("events.yaml", s).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("rust", n), &model, |b, m| {
            b.iter(|| black_box(rust::file(m)))
        });
        g.bench_with_input(BenchmarkId::new("typescript", n), &model, |b, m| {
            b.iter(|| black_box(typescript::file(m)))
        });
        g.bench_with_input(BenchmarkId::new("markdown", n), &model, |b, m| {
            b.iter(|| black_box(docs::markdown(m)))
        });
        g.bench_with_input(BenchmarkId::new("asyncapi", n), &model, |b, m| {
            b.iter(|| black_box(asyncapi::document(m)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = codegen
}
criterion_main!(benches);

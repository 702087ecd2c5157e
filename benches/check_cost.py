#!/usr/bin/env python3
"""Build cost of generated code: `cargo check` of a crate whose only dependency is `eventbus`
and that declares N generated events, through the macro route and the build-script route.

    python3 benches/check_cost.py [N ...]     # default: 10 100 1000

The crate lives in target/check-cost/<route>-<N>; dependencies are built once (the first,
untimed check), then the crate itself is re-checked after touching its manifest, three
times; the median is printed.
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "target", "check-cost")


def manifest(n):
    # Mirrors codegen/benches/codegen.rs.
    out = ["version: 1", "package: bench", "types:", "  Level:", "    enum: [low, mid, high]",
           "  Item:", "    fields:", "      name: string", "      size: u64", "      tags: string[]",
           "      level: Level", "      meta: map<string>?", "events:"]
    for i in range(n):
        out += [f"  event{i}:", f"    category: c{i % 10}", f"    description: Event number {i}."]
        if i % 3 == 0:
            out += ["    payload: Item", "    persist: true", "    ui: to_ui"]
        elif i % 3 == 1:
            out += ["    payload:", "      id: string", "      count: u32", "      ratio: f64?",
                    "      at: timestamp", "      items: Item[]", "    throttle: 500ms"]
        else:
            out += ["    ui: from_ui"]
    return "\n".join(out) + "\n"


def crate(route, n):
    d = os.path.join(WORK, f"{route}-{n}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "src"))
    build_deps = ""
    if route == "build-script":
        build_deps = f'[build-dependencies]\neventbus-codegen = {{ path = "{ROOT}/codegen", default-features = false }}\n'
        with open(os.path.join(d, "build.rs"), "w") as f:
            f.write('fn main() { eventbus_codegen::compile("events.yaml"); }\n')
        lib = "pub mod events { eventbus::include_events!(); }\n"
    else:
        lib = '#[eventbus::event_bus("events.yaml")]\npub mod events {}\n'
    with open(os.path.join(d, "Cargo.toml"), "w") as f:
        f.write(f'[package]\nname = "check-cost"\nversion = "0.0.0"\nedition = "2024"\n\n[workspace]\n\n'
                f'[dependencies]\neventbus = {{ path = "{ROOT}" }}\n{build_deps}')
    with open(os.path.join(d, "src", "lib.rs"), "w") as f:
        f.write(lib)
    with open(os.path.join(d, "events.yaml"), "w") as f:
        f.write(manifest(n))
    shutil.copy(os.path.join(ROOT, "Cargo.lock"), d)
    return d


def check(d):
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(WORK, "target"))
    start = time.monotonic()
    subprocess.run(["cargo", "check", "-q", "--offline"], cwd=d, env=env, check=True)
    return time.monotonic() - start


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [10, 100, 1000]
    print(f"{'route':<13} {'events':>7} {'cargo check (s)':>16}")
    for route in ["macro", "build-script"]:
        for n in sizes:
            d = crate(route, n)
            check(d)  # dependencies
            times = []
            for _ in range(3):
                os.utime(os.path.join(d, "events.yaml"))
                os.utime(os.path.join(d, "src", "lib.rs"))
                times.append(check(d))
            print(f"{route:<13} {n:>7} {statistics.median(times):>16.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The plot of issue 9: emit cost against listener count for eventbus, the direct-call limit and
Node's EventEmitter, one panel per payload, written as a hand-made SVG (no plotting library).

    python3 benches/plot_emit.py                    # runs benches/emit.py, writes docs/emit.svg
    python3 benches/plot_emit.py --from emit.json   # plots the JSON of `emit.py --json emit.json`
    python3 benches/plot_emit.py --out PATH         # writes elsewhere than docs/emit.svg

Both axes are logarithmic; 0 listeners sits one decade left of 1 (a log axis has no 0), and a
cost under 0.5 ns (the direct calls with 0 listeners: nothing to do) is drawn at 0.5 ns.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LISTENERS = [0, 1, 10, 100]
PAYLOADS = [("small", "small payload"), ("package_event", "PackageEvent")]
SERIES = [
    # (impl key in the JSON, legend, colour, dash)
    ("eventbus", "eventbus", "#1f77b4", ""),
    ("direct", "direct calls (the limit)", "#2ca02c", "6 4"),
    ("node", "Node EventEmitter", "#d62728", ""),
]
Y_MIN, Y_MAX = 0.5, 2000.0

# Geometry of one panel, in SVG user units.
PANEL_W, PANEL_H = 360, 300
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 64, 20, 40, 50
LEGEND_H = 70


def load(path):
    with open(path) as f:
        rows = json.load(f)
    # The fastest-slice figures (eventbus and the direct calls timed in alternation, Node's
    # fastest round) where the run has them: on a shared machine they are the least disturbed.
    return {
        (r["impl"], r["payload"], int(r["listeners"])): float(r.get("fastest_slice_ns", r["ns_per_emit"]))
        for r in rows
    }


def run_emit():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "emit.json")
        subprocess.run([sys.executable, os.path.join(ROOT, "benches", "emit.py"), "--json", path], cwd=ROOT, check=True)
        return load(path)


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fmt_ns(v):
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def panel(x0, y0, title, values):
    """One panel at (x0, y0); `values[impl][n]` in ns. Returns SVG elements."""
    left, top = x0 + MARGIN_L, y0 + MARGIN_T
    width = PANEL_W - MARGIN_L - MARGIN_R
    height = PANEL_H - MARGIN_T - MARGIN_B
    lo, hi = math.log10(Y_MIN), math.log10(Y_MAX)

    def px(n):  # 0, 1, 10, 100 -> 0..3 decades
        pos = 0 if n == 0 else 1 + math.log10(n)
        return left + width * pos / 3

    def py(ns):
        v = min(max(ns, Y_MIN), Y_MAX)
        return top + height * (hi - math.log10(v)) / (hi - lo)

    out = [f'<text x="{left + width / 2:.1f}" y="{y0 + 22}" text-anchor="middle" font-weight="bold">{esc(title)}</text>']
    # Grid and y ticks: 1, 10, 100, 1000 (and 0.5 at the bottom).
    for ns in [0.5, 1, 10, 100, 1000]:
        y = py(ns)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt_ns(ns)}</text>')
    for ns in [2, 3, 5, 20, 30, 50, 200, 300, 500]:
        y = py(ns)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + 4}" y2="{y:.1f}" stroke="#999"/>')
    # x ticks.
    for n in LISTENERS:
        x = px(n)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + height}" stroke="#eee"/>')
        out.append(f'<line x1="{x:.1f}" y1="{top + height}" x2="{x:.1f}" y2="{top + height + 5}" stroke="#333"/>')
        out.append(f'<text x="{x:.1f}" y="{top + height + 18}" text-anchor="middle">{n}</text>')
    # Axes.
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + height}" stroke="#333"/>')
    out.append(f'<line x1="{left}" y1="{top + height}" x2="{left + width}" y2="{top + height}" stroke="#333"/>')
    out.append(f'<text x="{left + width / 2:.1f}" y="{top + height + 38}" text-anchor="middle">listeners</text>')
    cy = top + height / 2
    out.append(f'<text x="{x0 + 16}" y="{cy:.1f}" text-anchor="middle" transform="rotate(-90 {x0 + 16} {cy:.1f})">ns per emit</text>')
    # The series.
    for impl, _, colour, dash in SERIES:
        points = [(px(n), py(values[impl][n])) for n in LISTENERS if n in values.get(impl, {})]
        if not points:
            continue
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        for x, y in points:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
    return out


def svg(results):
    width = PANEL_W * len(PAYLOADS)
    height = PANEL_H + LEGEND_H
    body = [f'<rect width="{width}" height="{height}" fill="white"/>']
    for i, (key, title) in enumerate(PAYLOADS):
        values = {}
        for impl, _, _, _ in SERIES:
            values[impl] = {n: results[(impl, key, n)] for n in LISTENERS if (impl, key, n) in results}
        body += panel(i * PANEL_W, 0, title, values)
    # Legend, under the panels.
    x, y = MARGIN_L, PANEL_H + 14
    for impl, label, colour, dash in SERIES:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(f'<line x1="{x}" y1="{y}" x2="{x + 28}" y2="{y}" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        body.append(f'<text x="{x + 36}" y="{y + 4}">{esc(label)}</text>')
        x += 36 + 7 * len(label) + 28
    body.append(
        f'<text x="{MARGIN_L}" y="{PANEL_H + 44}" fill="#555">Emit cost against listeners, log–log; '
        f"fastest slices; each handler is a plain counter increment. Generated by benches/plot_emit.py.</text>"
    )
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
    )
    return "\n".join([head, *body, "</svg>", ""])


def main():
    args = sys.argv[1:]
    source, out = None, os.path.join(ROOT, "docs", "emit.svg")
    while args:
        flag = args.pop(0)
        if flag in ("--from", "--out") and args:
            value = args.pop(0)
            if flag == "--from":
                source = value
            else:
                out = value
        else:
            print(__doc__, file=sys.stderr)
            sys.exit(2)
    results = load(source) if source else run_emit()
    missing = [(impl, p, n) for impl, *_ in SERIES for p, _ in PAYLOADS for n in LISTENERS if (impl, p, n) not in results]
    if missing:
        print(f"missing figures: {missing}", file=sys.stderr)
        sys.exit(2)
    with open(out, "w") as f:
        f.write(svg(results))
    print(f"wrote {os.path.relpath(out, ROOT)}")


if __name__ == "__main__":
    main()

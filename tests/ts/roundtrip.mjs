// The Node half of tests/typescript_roundtrip.rs (run it through `cargo test --test
// typescript_roundtrip`, which compiles the generated TypeScript and writes the input).
//
//   node tests/ts/roundtrip.mjs <rust.json> <node.json>
//
// <rust.json>: { modules: { name: "<compiled .js>" }, schemas: { name: { types, events } },
//                cases: [{ module, type, event, what, json, mutate }] }   (json: text serde wrote)
// Checks that every guard accepts every value Rust serialised, and that the guards reject the
// mutants that must be rejected (and accept those that must be accepted). Cases marked
// `lenient` are forms serde accepts and the guards deliberately do not (they are not what the
// TypeScript types describe, and Rust never writes them): Rust checks it still accepts them. Writes <node.json>:
// every value built here with the guards' verdict, for Rust to judge the same way, and every
// Rust value as JavaScript re-writes it. Exits 1 on any failure.

import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [rustPath, outPath] = process.argv.slice(2);
if (!rustPath || !outPath) {
  console.error("usage: node tests/ts/roundtrip.mjs <rust.json> <node.json>");
  process.exit(2);
}
const input = JSON.parse(readFileSync(rustPath, "utf8"));
const modules = {};
for (const [name, path] of Object.entries(input.modules)) {
  modules[name] = await import(pathToFileURL(path).href);
}

const failures = [];
const cases = []; // values built here, for Rust
const echoes = []; // Rust values as JavaScript re-writes them
const SAFE = Number.MAX_SAFE_INTEGER;
const MAX_NESTING = 127; // serde_json's limit, counted from the payload's root

const show = (v) => {
  try {
    const s = JSON.stringify(v);
    if (s === undefined) return String(v);
    return s.length > 160 ? s.slice(0, 160) + "..." : s;
  } catch {
    return String(v);
  }
};

const tag = (v) => Object.prototype.toString.call(v);

/** Same value after JSON.stringify + JSON.parse? (NaN, undefined, -0, a Map... are not.) */
function sameValue(a, b) {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (tag(a) !== tag(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameValue(a[k], b[k]));
}
function faithful(v) {
  try {
    const s = JSON.stringify(v);
    return s !== undefined && sameValue(v, JSON.parse(s));
  } catch {
    return false;
  }
}

const segment = (name) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? "." + name : "[" + JSON.stringify(name) + "]");

/** Runs every guard that applies; checks they agree with each other. */
function judge(mod, target, value) {
  const verdicts = [];
  let message = null;
  if (target.type) {
    const is = mod["is" + target.type];
    const validate = mod["validate" + target.type];
    if (typeof is !== "function" || typeof validate !== "function") {
      failures.push(`${target.module}: no is${target.type}/validate${target.type} exported`);
      return { accepted: false, message: "missing guard" };
    }
    verdicts.push(is(value));
    message = validate(value);
    verdicts.push(message === null);
  }
  if (target.event) {
    verdicts.push(mod.validators[target.event](value));
    verdicts.push(mod.isEventPayload(target.event, value));
    const m = mod.validateEventPayload(target.event, value);
    verdicts.push(m === null);
    message ??= m;
  }
  const accepted = verdicts[0];
  if (verdicts.some((v) => v !== accepted)) {
    failures.push(`${target.module} ${label(target)}: the guards disagree (${verdicts}) on ${show(value)}`);
  }
  if (!accepted && !(typeof message === "string" && message.startsWith("$"))) {
    failures.push(`${target.module} ${label(target)}: a rejection must explain itself as "$...: ...", got ${show(message)}`);
  }
  return { accepted, message };
}

const label = (t) => (t.type ? t.type : "event " + t.event);

/**
 * Records a value built here: checks the guards' verdict against `expect` ("accept",
 * "reject" or undefined for no expectation) and the explanation's path against `path`, and
 * hands it to Rust when it can be written as JSON.
 */
function check(target, value, what, expect, path, lenient = false) {
  const mod = modules[target.module];
  const { accepted, message } = judge(mod, target, value);
  if (expect !== undefined && accepted !== (expect === "accept")) {
    failures.push(
      `${target.module} ${label(target)} (${what}): expected the guard to ${expect} ${show(value)}` +
        (message ? `; it said ${message}` : ""),
    );
  }
  if (!accepted && path !== undefined && typeof message === "string" && !message.startsWith(path)) {
    failures.push(`${target.module} ${label(target)} (${what}): the explanation should start with ${path}: ${message}`);
  }
  let json;
  try {
    json = JSON.stringify(value);
  } catch {
    json = undefined; // a BigInt, a cycle: JSON.stringify throws, nothing is sent
  }
  if (json !== undefined) {
    cases.push({
      module: target.module,
      type: target.type ?? null,
      event: target.event ?? null,
      target: label(target),
      what,
      json,
      accepted,
      faithful: faithful(value),
      message,
      lenient,
    });
  }
}

// ---- samples: values for a slot of a given type, with what the guard must say -----------------

const INT = {
  i8: [-128, 127],
  i16: [-32768, 32767],
  i32: [-2147483648, 2147483647],
  u8: [0, 255],
  u16: [0, 65535],
  u32: [0, 4294967295],
};

/** Valid values of each type seen so far, per module (from Rust), to fill nested slots. */
const valid = {};

function samples(module, type, depth = 0) {
  const schema = input.schemas[module];
  const ok = (value, what) => ({ value, expect: "accept", what });
  const no = (value, what) => ({ value, expect: "reject", what });
  // Not JSON-faithful: the guard must reject; Rust may read JSON.stringify's version anyway.
  const nonJson = [no(NaN, "NaN"), no(Infinity, "Infinity"), no(undefined, "undefined"), no(1n, "a bigint"), no(() => 1, "a function")];
  if (type.prim) {
    const p = type.prim;
    if (p === "string") {
      return [ok("", "empty"), ok("😀 ünï", "unicode"), ok("\u2028", "U+2028"), ok("\ud83d\ude00", "a surrogate pair"),
        no("\ud800", "a lone high surrogate"), no("a\udc00", "a lone low surrogate"), no(5, "a number"), no(null, "null"),
        no(true, "a boolean"), no(["a"], "an array"), no(new String("boxed"), "a boxed string"), ...nonJson];
    }
    if (p === "bool") {
      return [ok(true, "true"), ok(false, "false"), no(0, "0"), no("true", "a string"), no(null, "null"), no(new Boolean(true), "boxed"), ...nonJson];
    }
    if (INT[p]) {
      const [min, max] = INT[p];
      return [ok(min, "min"), ok(max, "max"), ok(0, "zero"), ok(-0, "minus zero"), no(min - 1, "min - 1"), no(max + 1, "max + 1"),
        no(1.5, "a fraction"), no("1", "a string"), no(null, "null"), no(true, "a boolean"), no(SAFE + 2, "2^53 + 1"), ...nonJson];
    }
    if (p === "i64" || p === "u64") {
      const signed = p === "i64";
      const accepts = signed
        ? ["9223372036854775807", "-9223372036854775808", "0", "-1", "9007199254740993", SAFE, -SAFE, 0, -5]
        : ["18446744073709551615", "0", "1", "9007199254740993", SAFE, 0, 7];
      const rejects = signed
        ? ["9223372036854775808", "-9223372036854775809", "-0", "+1", "01", "-01", " 1", "1 ", "1e3", "1.0", "", "-", "0x10", "١"]
        : ["18446744073709551616", "99999999999999999999", "-1", "-0", "+1", "007", "1e3", "1.5", "", " 1"];
      return [
        ...accepts.map((v) => ok(v, `${typeof v} ${v}`)),
        ...rejects.map((v) => no(v, `string ${JSON.stringify(v)}`)),
        no(SAFE + 1, "2^53 as a number (unsafe)"),
        no(SAFE + 2, "2^53 + 1 as a number (JavaScript already rounded it)"),
        no(-SAFE - 1, "-2^53 as a number"),
        no(2 ** 64, "2^64 as a number"),
        no(1e21, "1e21 as a number"),
        no(1.5, "a fraction"),
        no(signed ? -SAFE - 2 : -1, "negative or unsafe number"),
        no(true, "a boolean"),
        no(null, "null"),
        no(10n, "a bigint"),
        ...nonJson,
      ];
    }
    if (p === "timestamp") {
      return [ok(0, "epoch"), ok(SAFE, "2^53 - 1"), ok(-SAFE, "-(2^53 - 1)"), ok(Date.now(), "now"),
        no(SAFE + 1, "2^53"), no(-SAFE - 1, "-2^53"), no(1.5, "a fraction"), no("0", "a string"), no(null, "null"),
        no(new Date(0), "a Date object"), ...nonJson];
    }
    if (p === "f32" || p === "f64") {
      return [ok(0, "zero"), ok(-1.5, "negative"), ok(3.4e38, "near f32::MAX"), ok(1e-40, "tiny"), ok(SAFE, "a big integer"),
        ...(p === "f64" ? [ok(1e300, "1e300"), ok(Number.MAX_VALUE, "f64::MAX"), ok(5e-324, "min subnormal")] : []),
        no("1", "a string"), no(null, "null"), no(true, "a boolean"), no(new Number(1), "boxed"), ...nonJson];
    }
    if (p === "json") {
      const deep = (n) => { let v = 1; for (let i = 0; i < n; i++) v = [v]; return v; };
      return [ok(null, "null"), ok(0, "zero"), ok("s", "a string"), ok([], "[]"), ok({}, "{}"), ok({ a: [1, { b: null }] }, "nested"),
        ok(JSON.parse('{"__proto__": 1}'), "an own __proto__ key"), ok({ a: undefined, b: 1 }, "an undefined property (skipped, like JSON.stringify)"),
        ok(deep(MAX_NESTING - depth), "nested to serde_json's limit"), no(deep(MAX_NESTING - depth + 1), "nested one level too deep"),
        no("\ud800", "a lone surrogate"), no({ "\udc00": 1 }, "a lone surrogate key"), no([1, NaN], "NaN inside"),
        no([undefined], "undefined in an array"), no({ d: new Date(0) }, "a Date inside"), no(new Map(), "a Map"),
        no(NaN, "NaN"), no(undefined, "undefined"), no(1n, "a bigint")];
    }
    throw new Error("unknown primitive " + p);
  }
  if (type.list) {
    const inner = samples(module, type.list, depth + 1);
    const good = inner.find((s) => s.expect === "accept");
    const bad = inner.find((s) => s.expect === "reject" && faithful(s.value));
    return [ok([], "empty list"), ...(good ? [ok([good.value, good.value], "two good elements")] : []),
      ...(bad ? [no([good?.value, bad.value].filter((v) => v !== undefined), `a bad element (${bad.what})`)] : []),
      no({}, "an object"), no("[]", "a string"), no(null, "null"), no([undefined], "a hole"), ...nonJson];
  }
  if (type.map) {
    const inner = samples(module, type.map, depth + 1);
    const good = inner.find((s) => s.expect === "accept");
    const bad = inner.find((s) => s.expect === "reject" && faithful(s.value));
    const proto = good ? JSON.parse(`{"__proto__": ${JSON.stringify(good.value)}}`) : undefined;
    return [ok({}, "empty map"),
      ...(good ? [ok({ "😀": good.value, "": good.value, constructor: good.value }, "unicode, empty and Object.prototype keys"),
        ok(proto, "an own __proto__ key"), no({ "\ud800": good.value }, "a lone surrogate key")] : []),
      ...(bad ? [no({ k: bad.value }, `a bad value (${bad.what})`)] : []),
      no([], "an array"), no(null, "null"), no("{}", "a string"), no(new Map(), "a Map"), ...nonJson];
  }
  const t = schema.types[type.named];
  if (t.kind === "enum") {
    return [...t.values.map((v) => ok(v, JSON.stringify(v))), no("no-such-value", "an unknown value"), no("", "empty"),
      ...(t.values[0].toUpperCase() !== t.values[0] ? [no(t.values[0].toUpperCase(), "wrong case")] : []),
      { value: { [t.values[0]]: null }, expect: "reject", what: "serde's map form of a unit variant", lenient: true }, no(0, "a number"), no(null, "null"), ...nonJson];
  }
  const goods = valid[module]?.[type.named] ?? [];
  const required = t.fields.some((f) => !f.optional);
  return [...goods.slice(0, 1).map((v) => ok(v, "a valid value")),
    // serde's positional form: `[]` is a struct whose fields are all optional.
    { value: [], expect: "reject", what: "an array", lenient: !required }, no("x", "a string"), no(null, "null"),
    ...(required ? [no({}, "an empty object")] : [ok({}, "an empty object")]), no(new Date(0), "a Date"), ...nonJson];
}

/** Mutants of a valid struct value: one field at a time, extra keys, and whole replacements. */
function mutateStruct(target, typeName, value) {
  const t = input.schemas[target.module].types[typeName];
  const clone = () => JSON.parse(JSON.stringify(value));
  for (const f of t.fields) {
    const path = "$" + segment(f.name);
    const without = clone();
    delete without[f.name];
    if (f.optional) {
      check(target, without, `without optional ${f.name}`, "accept");
      const withNull = clone();
      withNull[f.name] = null;
      check(target, withNull, `${f.name}: null`, f.type.prim === "json" ? "accept" : "reject", path);
      const withUndefined = clone();
      withUndefined[f.name] = undefined;
      check(target, withUndefined, `${f.name}: undefined (absent for JSON)`, "accept");
    } else {
      check(target, without, `without required ${f.name}`, "reject", path);
      const inherited = Object.create({ [f.name]: value[f.name] });
      Object.assign(inherited, without);
      check(target, inherited, `${f.name} inherited, not own`, "reject", path);
    }
    for (const s of samples(target.module, f.type, 1)) {
      if (f.optional && s.value === undefined) continue; // absent: checked above
      const m = clone();
      m[f.name] = s.value;
      check(target, m, `${f.name}: ${s.what}`, s.expect, path, s.lenient);
    }
  }
  check(target, { ...clone(), extraKey: [1, "x"] }, "an unknown key (ignored, as by serde)", "accept");
  check(target, { ...clone(), extra: NaN }, "an unknown key holding NaN (JSON.stringify writes null)", "accept");
  check(target, { ...clone(), "\ud800": 1 }, "an unknown key that is a lone surrogate", "reject", "$[");
  check(target, Object.assign(Object.create(null), clone()), "an object without prototype", "accept");
  // serde's positional form: `[]` is a struct whose fields are all optional.
  check(target, [], "an array", "reject", "$", t.fields.every((f) => f.optional));
  if (t.fields.every((f) => value[f.name] !== undefined)) {
    const positional = t.fields.map((f) => value[f.name]);
    check(target, positional, "serde's positional (array) form of a struct", "reject", "$", true);
  }
  check(target, null, "null", "reject", "$");
  check(target, "x", "a string", "reject", "$");
  check(target, new Map(Object.entries(clone())), "a Map", "reject", "$");
  check(target, { ...clone(), toJSON: () => ({}) }, "an object with toJSON", "reject", "$");
}

/** A value built here from the schema alone: only required fields, or every field. */
function build(module, type, full, depth = 0) {
  if (type.prim) return samples(module, type, depth).find((s) => s.expect === "accept").value;
  if (type.list) return depth > 3 ? [] : [build(module, type.list, full, depth + 1)];
  if (type.map) return depth > 3 ? {} : { "ключ": build(module, type.map, full, depth + 1) };
  const t = input.schemas[module].types[type.named];
  if (t.kind === "enum") return t.values[t.values.length - 1];
  const o = {};
  for (const f of t.fields) {
    if (!f.optional || (full && depth < 3)) o[f.name] = build(module, f.type, full, depth + 1);
  }
  return o;
}

/** The nesting depth of a value, as serde_json counts it: one per array or object. */
function nesting(v) {
  if (typeof v !== "object" || v === null) return 0;
  return 1 + Math.max(0, ...Object.values(v).map(nesting));
}

/** Objects nested `levels` deep through an optional self-referencing field. */
function chain(module, typeName, field, levels) {
  let v;
  for (let i = 0; i < levels; i++) {
    const o = build(module, { named: typeName }, false);
    if (v !== undefined) o[field] = v;
    v = o;
  }
  return v;
}

// ---- 1. every value Rust made is accepted --------------------------------------------------------

let rustChecked = 0;
for (const c of input.cases) {
  const value = JSON.parse(c.json); // as the bridge receives a frame
  const target = { module: c.module, type: c.type ?? undefined, event: c.event ?? undefined };
  const { accepted, message } = judge(modules[c.module], target, value);
  rustChecked++;
  if (!accepted) failures.push(`${c.module} ${label(target)} (${c.what}): Rust wrote ${c.json}, the guard rejects it: ${message}`);
  if (c.type) {
    ((valid[c.module] ??= {})[c.type] ??= []).push(value);
    echoes.push({ module: c.module, type: c.type, what: c.what, original: c.json, json: JSON.stringify(value) });
  }
}

// ---- 2. mutants and values built here --------------------------------------------------------------

for (const c of input.cases.filter((c) => c.mutate)) {
  const value = JSON.parse(c.json);
  const target = { module: c.module, type: c.type ?? undefined, event: c.event ?? undefined };
  const schema = input.schemas[c.module];
  if (!c.type) {
    for (const v of [null, {}, undefined]) check(target, v, `no payload: ${show(v)}`, "accept");
    for (const v of [{ a: 1 }, [], 0, "x", false, { a: undefined, b: null }]) check(target, v, `no payload: ${show(v)}`, "reject", "$");
  } else if (schema.types[c.type].kind === "enum") {
    for (const s of samples(c.module, { named: c.type })) check(target, s.value, s.what, s.expect, "$", s.lenient);
  } else {
    mutateStruct(target, c.type, value);
  }
}

for (const [module, schema] of Object.entries(input.schemas)) {
  for (const [name, t] of Object.entries(schema.types)) {
    if (t.kind !== "struct") continue;
    const target = { module, type: name };
    check(target, build(module, { named: name }, false), "built in Node: required fields only", "accept");
    check(target, build(module, { named: name }, true), "built in Node: every field", "accept");
    // serde_json refuses more than 127 nested levels: so must the guard, at the same depth.
    for (const f of t.fields.filter((f) => f.optional && f.type.named === name)) {
      let around = 0;
      for (let levels = 20; levels <= MAX_NESTING + 1; levels++) {
        const v = chain(module, name, f.name, levels);
        const depth = nesting(v);
        if (Math.abs(depth - MAX_NESTING) > 2) continue;
        around++;
        check(target, v, `${levels} levels through ${f.name}, ${depth} deep`, depth <= MAX_NESTING ? "accept" : "reject");
      }
      if (around < 4) failures.push(`${module} ${name}: no chain through ${f.name} ends near the nesting limit`);
    }
  }
  for (const [event, payload] of Object.entries(schema.events)) {
    if (payload && schema.types[payload].kind === "struct") {
      check({ module, event }, build(module, { named: payload }, true), "built in Node", "accept");
    }
  }
  // Names that are not events, including Object.prototype's.
  const mod = modules[module];
  for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty", "", "nope"]) {
    if (!(name in schema.events)) {
      if (mod.isEventName(name)) failures.push(`${module}: isEventName(${JSON.stringify(name)}) must be false`);
      if (mod.isEventPayload(name, null)) failures.push(`${module}: isEventPayload(${JSON.stringify(name)}) must be false`);
      const m = mod.validateEventPayload(name, null);
      if (m !== `unknown event ${JSON.stringify(name)}`) failures.push(`${module}: validateEventPayload(${JSON.stringify(name)}) said ${m}`);
    }
  }
}

writeFileSync(outPath, JSON.stringify({ cases, echoes }));
const rejected = cases.filter((c) => !c.accepted).length;
console.error(
  `roundtrip.mjs: ${rustChecked} values from Rust accepted; ${cases.length} values built in Node ` +
    `(${cases.length - rejected} accepted, ${rejected} rejected) handed back to Rust`,
);
if (failures.length > 0) {
  console.error(`\n${failures.length} failure(s):\n` + failures.slice(0, 200).join("\n"));
  process.exit(1);
}

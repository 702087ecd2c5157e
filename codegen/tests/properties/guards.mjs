// The Node half of codegen/tests/properties.rs: runs the generated TypeScript guards over
// JSON texts and writes their verdicts.
//
//   node codegen/tests/properties/guards.mjs <cases.json> <verdicts.json>
//
// <cases.json>: { modules: ["<compiled .js>", ...], cases: [{ module, type, event, json }] }
// For each case the value is `JSON.parse(json)` (as a frame arrives); every guard that applies
// (`isT`, `validateT`, `validators[event]`, `isEventPayload`, `validateEventPayload`) must give
// the same verdict, and a rejection must explain itself as "$...". Writes one
// { accepted, detail } per case; exits 1 if the guards disagree among themselves.

import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [inPath, outPath] = process.argv.slice(2);
if (!inPath || !outPath) {
  console.error("usage: node guards.mjs <cases.json> <verdicts.json>");
  process.exit(2);
}
const input = JSON.parse(readFileSync(inPath, "utf8"));
const modules = [];
for (const path of input.modules) modules.push(await import(pathToFileURL(path).href));

const failures = [];
const out = [];
for (const c of input.cases) {
  const mod = modules[c.module];
  const value = JSON.parse(c.json);
  const verdicts = [];
  let message = null;
  if (c.type !== null) {
    const is = mod["is" + c.type];
    const validate = mod["validate" + c.type];
    if (typeof is !== "function" || typeof validate !== "function") {
      failures.push(`module ${c.module}: no is${c.type}/validate${c.type} exported`);
      out.push({ accepted: false, detail: "no guard" });
      continue;
    }
    verdicts.push(is(value));
    message = validate(value);
    verdicts.push(message === null);
  }
  if (c.event !== null) {
    if (!mod.isEventName(c.event)) failures.push(`module ${c.module}: isEventName(${JSON.stringify(c.event)}) is false`);
    const guard = Object.prototype.hasOwnProperty.call(mod.validators, c.event) ? mod.validators[c.event] : undefined;
    if (typeof guard !== "function") failures.push(`module ${c.module}: no validators[${JSON.stringify(c.event)}]`);
    else verdicts.push(guard(value));
    verdicts.push(mod.isEventPayload(c.event, value));
    const m = mod.validateEventPayload(c.event, value);
    verdicts.push(m === null);
    message ??= m;
  }
  const accepted = verdicts[0];
  if (verdicts.some((v) => v !== accepted)) {
    failures.push(`module ${c.module} ${c.type ?? c.event}: the guards disagree (${verdicts}) on ${c.json}`);
  }
  if (!accepted && !(typeof message === "string" && message.startsWith("$"))) {
    failures.push(`module ${c.module} ${c.type ?? c.event}: a rejection must explain itself as "$...: ...", got ${JSON.stringify(message)}`);
  }
  out.push({ accepted, detail: accepted ? "accepted" : message });
}
writeFileSync(outPath, JSON.stringify(out));
if (failures.length > 0) {
  console.error(`${failures.length} failure(s):\n` + failures.slice(0, 50).join("\n"));
  process.exit(1);
}

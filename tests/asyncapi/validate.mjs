// Validates AsyncAPI documents with the official parser (@asyncapi/parser, pinned in
// package-lock.json): schema validation plus its Spectral ruleset.
//
//   node tests/asyncapi/validate.mjs doc1.json [doc2.json ...]
//
// Prints every diagnostic; exits 1 if any document has an error-severity diagnostic.

import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const parser = new Parser();
let failed = false;
for (const path of process.argv.slice(2)) {
  const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"));
  // Severity 0 is an error in Spectral's scale (0 error, 1 warning, 2 info, 3 hint).
  const errors = diagnostics.filter((d) => d.severity === 0);
  for (const d of diagnostics) {
    console.log(`${path}: [${["error", "warning", "info", "hint"][d.severity]}] ${d.code}: ${d.message} at ${d.path.join(".")}`);
  }
  if (!document || errors.length > 0) {
    failed = true;
    console.log(`${path}: INVALID (${errors.length} errors)`);
  } else {
    console.log(`${path}: valid AsyncAPI ${document.version()} with ${document.channels().length} channels`);
  }
}
process.exit(failed ? 1 : 0);

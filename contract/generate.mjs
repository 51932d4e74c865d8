// Writes index.d.ts from schemas/ with json-schema-to-typescript: the schemas are the source of truth, the types
// are never edited by hand (tests/contract/test_generated_types.py regenerates and compares the bytes).
//   node generate.mjs [--out FILE]     (npm run generate)
import {writeFile} from "node:fs/promises";
import {dirname, join} from "node:path";
import {fileURLToPath} from "node:url";
import {parseArgs} from "node:util";

import {compileFromFile} from "json-schema-to-typescript";

const here = dirname(fileURLToPath(import.meta.url));
const {values} = parseArgs({options: {out: {type: "string", default: join(here, "index.d.ts")}}});

// event.json (the envelope union) references every detail schema, and they reference common.json: compiling it
// alone declares each type once.
const types = await compileFromFile(join(here, "schemas", "event.json"), {
  cwd: join(here, "schemas"),
  bannerComment: [
    "/**",
    " * The events kiray-imaging publishes on EventBridge (source `kiray.imaging`).",
    " * Generated from schemas/*.json by json-schema-to-typescript (generate.mjs): edit a schema, then run",
    " * `npm run generate`; never edit this file by hand.",
    " */",
  ].join("\n"),
  // Only the envelope leaves additionalProperties unset (it is EventBridge's, and open). An interface lists the
  // fields known; an index signature would let a misspelt envelope field through as `unknown`.
  additionalProperties: false,
  // No `const enum`s: a types-only package must not ask consumers to compile runtime values.
  enableConstEnums: false,
});
await writeFile(values.out, types);

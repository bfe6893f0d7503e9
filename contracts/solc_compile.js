// Read a solc standard-JSON input on stdin, compile with solc-js, print the standard-JSON output on stdout.
// Imports that are not in the input (e.g. "@openzeppelin/contracts/...") are resolved from node_modules.
// Used by contracts/compile.py; run from the repository root.
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const solc = require(path.join(root, "node_modules", "solc"));

function findImports(importPath) {
  const candidates = [path.join(root, "node_modules", importPath), path.join(root, importPath)];
  for (const candidate of candidates) {
    const resolved = path.resolve(candidate);
    if (!resolved.startsWith(root + path.sep)) continue;
    if (fs.existsSync(resolved)) return { contents: fs.readFileSync(resolved, "utf8") };
  }
  return { error: `File not found: ${importPath}` };
}

const input = fs.readFileSync(0, "utf8");
const output = JSON.parse(solc.compile(input, { import: findImports }));
output.compilerVersion = solc.version();
process.stdout.write(JSON.stringify(output));

// Render every math span of the Markdown files given as arguments with KaTeX, errors as failures.
// Prints one line per failing span and exits 1 if any failed.
const fs = require("fs");
const katex = require("katex");
let failures = 0, spans = 0;
for (const file of process.argv.slice(2)) {
  const text = fs.readFileSync(file, "utf8");
  const pattern = /\$\$([\s\S]+?)\$\$|\$([^$\n]+?)\$/g;
  for (const match of text.matchAll(pattern)) {
    const display = match[1] !== undefined;
    const tex = display ? match[1] : match[2];
    spans += 1;
    try {
      katex.renderToString(tex, { displayMode: display, throwOnError: true, strict: "error" });
    } catch (error) {
      failures += 1;
      console.log(`${file}: ${error.message}\n  ${tex.slice(0, 200)}`);
    }
  }
}
console.log(`${spans} math spans, ${failures} failed`);
process.exit(failures ? 1 : 0);

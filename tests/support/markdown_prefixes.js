// For tests/test_chat_markdown.py: reads [text, ...] as JSON on stdin and writes, for each text,
// the visible text of every prefix (code blocks apart) as the chat page renders it while streaming (settle, then
// markdown-it), and whether the whole text settled renders as the whole text does.
"use strict";
const path = require("path");
const root = path.resolve(__dirname, "..", "..");
const markdownit = require(path.join(root, "static", "vendor", "markdown-it.min.js"));
const { settle, markdown } = require(path.join(root, "static", "js", "markdown.js"));

const md = markdown(markdownit);
const env = { marker: (n) => `<a class="marker" href="#cite-${n}">[${n}]</a>` };
// The model's "<" is escaped (html: false), so every tag here is markdown-it's own.
const visible = (html) =>
  html
    .replace(/<[^>]+>/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&");

const texts = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = texts.map((text) => {
  const prefixes = [];
  for (let end = 0; end <= text.length; end += 1) {
    const html = md.render(settle(text.slice(0, end)), env);
    prefixes.push({
      text: text.slice(0, end),
      prose: visible(html.replace(/<pre>[\s\S]*?<\/pre>/g, "")), // all but code blocks
      code: (html.match(/<pre>[\s\S]*?<\/pre>/g) || []).map(visible),
      tables: (html.match(/<table>/g) || []).length,
    });
  }
  const same = md.render(settle(text + "\n"), env) === md.render(text, env);
  return { prefixes, same };
});
process.stdout.write(JSON.stringify(out));

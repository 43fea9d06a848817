// The chat page's Markdown: markdown-it (static/vendor/markdown-it.min.js) renders an answer, and
// `settle` decides what of a half-written answer can be shown without raw syntax. No DOM here, so
// tests/test_chat_markdown.py runs it under Node on every prefix of an answer.
(function (root) {
  "use strict";

  const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
  // A line of block syntax with nothing after it yet: "#", "- ", "1.", ">", "---", "**", "".
  const BLOCK_ONLY = /^ {0,3}(?:#{1,6}|[-*+]|\d{1,9}[.)]?|>|=+|-+|_+|\*+)?[ \t]*$/;
  // A line that starts a block of its own: the paragraph it follows ends there.
  const BLOCK_START = /^ {0,3}(?:#{1,6}(?:[ \t]|$)|[-*+][ \t]|\d{1,9}[.)][ \t]|>|`{3,}|~{3,})/;
  const TABLE_DELIMITER = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
  const MARKER = /^\[(\d{1,3})\]/;
  const HTTP = /^https?:\/\//i;

  function closingFence(line, open) {
    const match = line.match(/^ {0,3}(`{3,}|~{3,})[ \t]*$/);
    return !!match && match[1][0] === open[0] && match[1].length >= open.length;
  }

  // Code spans and emphasis left open at the end of `text` are closed (so "**bold" shows bold as
  // it is typed); a link or autolink still being typed is cut off until it is complete.
  function closeInline(text) {
    text = text.replace(/[*_~`]+$/, ""); // an opener or a closer being typed: wait for the next token
    text = text.replace(/!?\[(?!\d{1,3}\])[^\]\n]*(?:\](?:\([^)\n]*)?)?$/, ""); // [text](url…
    text = text.replace(/<[^\s<>]*$/, "").replace(/[*_~`]+$/, "");
    const open = [];
    let code = null;
    for (let i = 0; i < text.length; ) {
      const ch = text[i];
      let end = i;
      while (end < text.length && text[end] === ch) end += 1;
      const run = end - i;
      if (ch === "`") {
        if (code === null) code = run;
        else if (code === run) code = null;
      } else if (code === null && (ch === "*" || ch === "_" || ch === "~")) {
        const before = text[i - 1] ?? " ";
        const after = text[end] ?? " ";
        let canOpen = !/\s/.test(after);
        let canClose = !/\s/.test(before);
        if (ch === "_") {
          canOpen &&= !/[\p{L}\p{N}]/u.test(before); // snake_case is not emphasis
          canClose &&= !/[\p{L}\p{N}]/u.test(after);
        }
        const kinds = ch === "~" ? (run === 2 ? [2] : []) : run === 1 ? [1] : run % 2 ? [2, 1] : [2];
        for (const size of kinds) {
          const at = open.findLastIndex((d) => d.ch === ch && d.size === size);
          if (at >= 0 && canClose) open.splice(at, 1);
          else if (canOpen) open.push({ ch, size });
        }
      } else if (ch === "\\") {
        end = i + 2; // an escaped character is text
      }
      i = end;
    }
    const trailing = text.match(/\s*$/)[0];
    let closers = code === null ? "" : "`".repeat(code);
    for (const d of open.reverse()) closers += d.ch.repeat(d.size);
    return closers ? text.slice(0, text.length - trailing.length) + closers + trailing : text;
  }

  // What of a streaming answer to render: complete lines, and of the line being written only what
  // renders without raw Markdown. A table's header waits for its delimiter row and a row for its
  // end; an open code fence shows its code; a lone "#", "-" or "1." waits for its text.
  function settle(text) {
    const lines = text.split("\n");
    let partial = lines.pop();
    let fence = null;
    let table = false;
    let paragraph = 0; // where the paragraph the last line belongs to starts
    lines.forEach((line, index) => {
      if (fence) {
        if (closingFence(line, fence)) fence = null;
        paragraph = index + 1;
        return;
      }
      const opening = line.match(FENCE_OPEN);
      if (opening) {
        fence = opening[1];
        paragraph = index + 1;
        return;
      }
      if (table) table = line.includes("|");
      else table = index > 0 && line.includes("|") && lines[index - 1].includes("|") && TABLE_DELIMITER.test(line);
      if (!line.trim() || table) paragraph = index + 1;
      else if (BLOCK_START.test(line)) paragraph = index;
    });
    if (fence) {
      // In an open fence the line is code, unless it may be the closing fence being typed.
      return /^ {0,3}(`+|~+)[ \t]*$/.test(partial) ? lines.join("\n") + "\n" : text;
    }
    const last = lines.length - 1;
    if (last >= 0 && !table && lines[last].includes("|") && !FENCE_OPEN.test(lines[last])) {
      // A table's header, perhaps, without its delimiter row yet.
      lines.pop();
      partial = "";
      paragraph = Math.min(paragraph, lines.length);
    }
    if (partial.includes("|") || FENCE_OPEN.test(partial) || /^ {0,3}[`~]{1,2}$/.test(partial)) partial = "";
    if (BLOCK_ONLY.test(partial)) partial = "";
    if (BLOCK_START.test(partial)) paragraph = lines.length;
    const head = lines.slice(0, paragraph);
    let tail = closeInline(lines.slice(paragraph).concat(partial ? [partial] : []).join("\n"));
    const tailLines = tail.split("\n");
    if (partial && BLOCK_ONLY.test(tailLines[tailLines.length - 1])) {
      tail = closeInline(tailLines.slice(0, -1).join("\n")); // "- **" left only its "- "
    }
    return head.concat(tail ? [tail] : [""]).join("\n");
  }

  // markdown-it for answers: the model's HTML is text, links only http(s), no images, and a
  // marker [n] becomes a link to its source in the panel (env.marker renders it).
  function markdown(markdownit) {
    const md = markdownit({ html: false, linkify: false, typographer: false }).disable("image");
    md.validateLink = (url) => HTTP.test(url.trim());
    md.inline.ruler.before("link", "citation_marker", (state, silent) => {
      if (state.src.charCodeAt(state.pos) !== 0x5b) return false;
      const match = MARKER.exec(state.src.slice(state.pos, state.pos + 5));
      if (!match) return false;
      if (!silent) state.push("citation_marker", "", 0).meta = { number: Number(match[1]) };
      state.pos += match[0].length;
      return true;
    });
    md.renderer.rules.citation_marker = (tokens, idx, options, env) =>
      env.marker ? env.marker(tokens[idx].meta.number) : `[${tokens[idx].meta.number}]`;
    // Table alignment as a class: the page's policy allows no style attribute.
    md.core.ruler.push("align_class", (state) => {
      for (const token of state.tokens) {
        if (/^t[hd]_open$/.test(token.type)) {
          const style = token.attrGet("style");
          if (!style) continue;
          token.attrs = token.attrs.filter(([name]) => name !== "style");
          token.attrJoin("class", `align-${style.replace("text-align:", "")}`);
        }
      }
    });
    return md;
  }

  const api = { settle, markdown, closeInline };
  root.evi360Markdown = api;
  if (typeof module === "object" && module.exports) module.exports = api;
})(typeof window !== "undefined" ? window : globalThis);

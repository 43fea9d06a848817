// EVI 360 chat page: POST a question, then read the answer with the browser's EventSource.
// The answer is Markdown: markdown-it renders it (the model's own HTML as text, links http(s)
// only) and DOMPurify cleans the result before it enters the page; everything else from the
// model or the knowledge base (sources' titles, snippets) is inserted as text, never as HTML.
(() => {
  "use strict";

  const strings = JSON.parse(document.getElementById("ui-strings").textContent);
  const form = document.getElementById("ask");
  const question = document.getElementById("question");
  const send = document.getElementById("send");
  const stop = document.getElementById("stop");
  const languageSelect = document.getElementById("language");
  const conversation = document.getElementById("conversation");
  const conversationList = document.getElementById("conversation-list");
  const noConversations = document.getElementById("no-conversations");
  const moreConversations = document.getElementById("more-conversations");
  const newConversationButton = document.getElementById("new-conversation");
  const { settle, markdown } = window.evi360Markdown;
  const md = markdown(window.markdownit);
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  // Counters the browser tests read: every EventSource opened must be closed again, `listed`
  // counts the times the sidebar's list was drawn, `renders` the answers' redraws while streaming.
  const stats = (window.evi360 = {
    opened: 0,
    closed: 0,
    listed: 0,
    renders: 0,
    get open() {
      return this.opened - this.closed;
    },
  });

  let uiLanguage = document.documentElement.lang.startsWith("nl") ? "nl" : "en";
  let conversationId = null;
  let current = null; // the answer being streamed

  const t = (key) => strings[uiLanguage][key] ?? strings[uiLanguage]["error.default"];

  function applyLanguage(language) {
    uiLanguage = language === "nl" ? "nl" : "en";
    document.documentElement.lang = uiLanguage;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    // Buttons shown as a symbol (👍, 👎) are named by their label.
    for (const el of document.querySelectorAll("[data-i18n-label]")) {
      el.setAttribute("aria-label", t(el.dataset.i18nLabel));
      el.title = t(el.dataset.i18nLabel);
    }
    question.placeholder = t("placeholder");
    question.setAttribute("aria-label", t("placeholder"));
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A button whose text (or, with `label`, whose name for screen readers) follows the language.
  function textButton(className, key, testid, label = false) {
    const button = el("button", className);
    button.type = "button";
    if (testid) button.dataset.testid = testid;
    if (label) {
      button.dataset.i18nLabel = key;
      button.setAttribute("aria-label", t(key));
      button.title = t(key);
    } else {
      button.dataset.i18n = key;
      button.textContent = t(key);
    }
    return button;
  }

  function safeUrl(url) {
    return /^https?:\/\//i.test(url || "") ? url : null;
  }

  // --- One question and its answer ------------------------------------------------------------

  function newTurn(query) {
    // Only the latest answer carries the test ids, and Regenerate goes with the latest answer.
    for (const old of conversation.querySelectorAll(".regenerate")) old.remove();
    for (const old of conversation.querySelectorAll("[data-testid]")) old.removeAttribute("data-testid");
    const turn = el("article", "turn");
    turn.append(el("p", "question", query));
    const row = el("div", "answer-row");
    const answer = el("div", "answer streaming");
    answer.dataset.testid = "answer";
    answer.setAttribute("aria-busy", "true"); // redrawn every frame: screen readers wait for the end
    const cursor = el("span", "cursor");
    cursor.setAttribute("aria-hidden", "true");
    answer.append(cursor);
    const panel = el("aside", "citations");
    panel.dataset.testid = "citations";
    panel.hidden = true;
    const heading = el("h2", null, t("sources"));
    heading.dataset.i18n = "sources";
    const list = el("ol");
    panel.append(heading, list);
    row.append(answer, panel);
    const status = el("p", "status");
    status.hidden = true;
    const error = el("div", "error-box");
    error.dataset.testid = "error";
    error.hidden = true;
    const actions = el("div", "turn-actions");
    actions.hidden = true;
    turn.append(row, status, error, actions);
    conversation.append(turn);
    turn.scrollIntoView({ block: "end" });
    const state = { turn, answer, cursor, panel, list, status, error, actions, query, text: "", citations: new Map(), frame: 0 };
    turn.chat = state; // the Regenerate button finds the latest turn's state from its element
    return state;
  }

  // --- The answer's Markdown ----------------------------------------------------------------------

  const ALLOWED_TAGS = ["p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "code", "pre",
    "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "a"];
  // After DOMPurify: a marker keeps its link to the panel, any other link must be http(s) and
  // opens in a new tab without access to this page.
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName !== "A") return;
    const href = node.getAttribute("href") || "";
    if (node.classList.contains("marker") && /^#cite-[\w-]+$/.test(href)) return;
    if (safeUrl(href)) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    } else node.removeAttribute("href");
  });

  function markerHtml(state, number) {
    const citation = state.citations.get(number);
    if (!citation) return `[${number}]`;
    return `<a class="marker" href="#${md.utils.escapeHtml(citation.id)}" data-marker="${number}">[${number}]</a>`;
  }

  // Where the cursor goes: the last block's end (inside the last paragraph, list item, cell or
  // code), skipping the newlines markdown-it puts between blocks.
  function cursorHome(node) {
    for (;;) {
      let last = node.lastChild;
      while (last && last.nodeType === Node.TEXT_NODE && !last.data.trim()) last = last.previousSibling;
      if (!last || last.nodeType !== Node.ELEMENT_NODE || ["A", "BR", "HR"].includes(last.tagName)) return node;
      node = last;
    }
  }

  // The answer drawn again from its whole text: while it streams only what `settle` lets through
  // (no half-typed syntax), with the cursor at its end; once it ended, all of it.
  function draw(state, whole) {
    const html = md.render(whole ? state.text : settle(state.text), { marker: (n) => markerHtml(state, n) });
    const fragment = DOMPurify.sanitize(html, {
      ALLOWED_TAGS,
      ALLOWED_ATTR: ["href", "class", "start", "data-marker"],
      RETURN_DOM_FRAGMENT: true,
    });
    if (!whole) cursorHome(fragment).append(state.cursor);
    state.answer.replaceChildren(fragment);
  }

  // Tokens come faster than frames: the answer is redrawn at most once per animation frame.
  function appendToken(state, text) {
    state.text += text;
    if (!state.frame) {
      state.frame = requestAnimationFrame(() => {
        state.frame = 0;
        draw(state, false);
        stats.renders += 1;
      });
    }
  }

  function addCitation(state, data) {
    if (state.citations.has(data.marker)) return;
    const id = `cite-${state.sessionId}-${data.marker}`;
    const citation = { id, title: data.source.title, url: null };
    state.citations.set(data.marker, citation);
    const item = el("li");
    item.id = id;
    item.dataset.marker = String(data.marker);
    item.tabIndex = 0;
    item.append(el("span", "num", `[${data.marker}]`), " ");
    // A source without an http(s) URL of its own links to our page of it (login required).
    const passage = Number.isInteger(data.source.passage) ? `?passage=${data.source.passage}#passage-${data.source.passage}` : "";
    const own = Number.isInteger(data.source.id) ? `/sources/${data.source.id}${passage}` : null;
    const url = safeUrl(data.source.url) || own;
    citation.url = url && new URL(url, location.origin).href; // absolute, for the copied Markdown
    const title = url ? el("a", "title", data.source.title) : el("span", "title", data.source.title);
    if (url) {
      title.href = url;
      title.target = "_blank";
      title.rel = "noopener noreferrer";
    }
    item.append(title, el("p", "snippet", data.source.snippet));
    if (Number.isInteger(data.source.page)) title.after(el("span", "page", ` p. ${data.source.page}`));
    state.list.append(item);
    state.panel.hidden = false;
  }

  // --- Streaming ----------------------------------------------------------------------------------

  function setStreaming(on) {
    stop.hidden = !on;
    send.disabled = false;
  }

  // The answer's last drawing: all of its text when it is complete; a stopped or failed one keeps
  // to what had been shown (no half-typed syntax).
  function finish(state, complete = false) {
    if (state.source) {
      state.source.close();
      stats.closed += 1;
      state.source = null;
    }
    cancelAnimationFrame(state.frame);
    state.frame = 0;
    state.answer.classList.remove("streaming");
    state.answer.removeAttribute("aria-busy");
    draw(state, complete);
    state.cursor.remove();
    state.status.hidden = true;
    state.complete = complete;
    if (current === state) {
      current = null;
      setStreaming(false);
    }
    showActions(state);
  }

  function showError(state, code, retry) {
    state.error.replaceChildren(el("span", "message", t(`error.${code}`)));
    if (retry) {
      const button = el("button", "secondary", t("retry"));
      button.type = "button";
      button.dataset.testid = "retry";
      button.addEventListener("click", retry, { once: true });
      state.error.append(" ", button);
    }
    state.error.hidden = false;
  }

  function stopCurrent() {
    if (!current) return;
    const state = current;
    if (state.source && state.sessionId) {
      // Tell the server: closing the EventSource alone may not end the request at once.
      fetch(`/api/v1/stream/sessions/${state.sessionId}`, {
        method: "DELETE",
        credentials: "same-origin",
        keepalive: true,
        headers: { "X-CSRFToken": csrfToken() },
      }).catch(() => {});
    }
    finish(state);
    state.status.textContent = t("stopped");
    state.status.hidden = false;
  }

  // `regenerating`: the earlier turn (its state) whose question is asked again, as a new session.
  async function ask(query, language, regenerating = null) {
    stopCurrent(); // asking again while an answer streams stops the old stream
    const state = newTurn(query);
    current = state;
    setStreaming(true);
    const retry = () => {
      if (current === null) ask(query, language, regenerating);
    };
    const again = regenerating ? { regenerate: regenerating.sessionId } : {};
    let response;
    try {
      response = await fetch("/api/v1/stream/sessions/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ query, language, ...again, ...(conversationId ? { conversation_id: conversationId } : {}) }),
      });
    } catch {
      finish(state);
      showError(state, "network", retry);
      return;
    }
    if (current !== state) return; // stopped or superseded while the request was on its way
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      finish(state);
      showError(state, body?.error?.code ?? "default", retry);
      return;
    }
    const created = await response.json();
    state.sessionId = created.session_id;
    if (regenerating) markRegenerated(regenerating);
    openEvents(state, created.events_url, retry);
  }

  function openEvents(state, url, retry) {
    const source = new EventSource(url);
    stats.opened += 1;
    state.source = source;
    const seen = () => {
      state.status.hidden = true;
    };
    source.addEventListener("session", (event) => {
      seen();
      const data = JSON.parse(event.data);
      state.language = data.language;
      const started = data.conversation_id !== conversationId;
      setConversation(data.conversation_id);
      applyLanguage(data.language);
      if (started) loadConversations(); // a new conversation: show it at the top
      else {
        // the conversation just got newer: move it to the top
        const item = conversationList.querySelector(`li[data-id="${data.conversation_id}"]`);
        if (item) conversationList.prepend(item);
      }
    });
    source.addEventListener("citation", (event) => {
      seen();
      addCitation(state, JSON.parse(event.data));
    });
    source.addEventListener("token", (event) => {
      seen();
      appendToken(state, JSON.parse(event.data).text);
    });
    source.addEventListener("done", () => finish(state, true));
    source.addEventListener("error", (event) => {
      if (event.data) {
        // A server-sent `error` event: the answer stopped.
        finish(state);
        showError(state, JSON.parse(event.data).code, retry);
      } else if (source.readyState === EventSource.CONNECTING) {
        // The connection dropped; EventSource reconnects by itself and resumes (Last-Event-ID).
        state.status.textContent = t("reconnecting");
        state.status.hidden = false;
      } else {
        finish(state);
        showError(state, "network", retry);
      }
    });
  }

  // --- Under a finished answer: 👍/👎, copy, regenerate ------------------------------------------

  const REASONS = ["incorrect", "incomplete", "wrong_sources", "wrong_language", "other"];

  function showActions(state) {
    state.actions.replaceChildren();
    if (state.text) {
      const copy = textButton("secondary copy", "copy", "copy");
      copy.addEventListener("click", () => copyAnswer(state, copy));
      state.actions.append(copy);
    }
    if (state.complete && state.sessionId) state.actions.append(feedbackButtons(state));
    const note = el("span", "action-note");
    note.setAttribute("role", "status"); // "copied", "thanks": read out without moving the focus
    state.note = note;
    state.actions.append(note);
    state.actions.hidden = false;
    placeRegenerate();
  }

  // The answer as Markdown with its sources at the end: what a specialist pastes into a report.
  function answerMarkdown(state) {
    const sources = [...state.citations.entries()].sort(([a], [b]) => a - b);
    if (!sources.length) return state.text;
    const lines = sources.map(([n, c]) => `- [${n}] ${c.title}${c.url ? ` — ${c.url}` : ""}`);
    return `${state.text}\n\n**${t("sources")}**\n\n${lines.join("\n")}\n`;
  }

  async function copyAnswer(state, button) {
    try {
      await navigator.clipboard.writeText(answerMarkdown(state));
      state.note.textContent = t("copied");
    } catch {
      state.note.textContent = t("copy_failed");
    }
    button.focus();
  }

  function feedbackButtons(state) {
    const group = el("span", "feedback");
    group.setAttribute("role", "group");
    group.dataset.i18nLabel = "feedback";
    group.setAttribute("aria-label", t("feedback"));
    const up = textButton("secondary feedback-up", "feedback.up", "feedback-up", true);
    up.append(thumb());
    const down = textButton("secondary feedback-down", "feedback.down", "feedback-down", true);
    down.append(thumb());
    state.up = up;
    state.down = down;
    up.addEventListener("click", () => (state.feedback === "up" ? withdraw(state, up) : rate(state, { rating: "up" }, up)));
    down.addEventListener("click", () => (state.feedback === "down" ? withdraw(state, down) : openReasons(state)));
    group.append(up, down);
    pressed(state);
    return group;
  }

  // 👍 drawn, not typed: many Linux desktops have no emoji font (Feather's thumbs-up, MIT). 👎 is
  // the same drawing turned over (CSS).
  function thumb() {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.classList.add("thumb");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3");
    svg.append(path);
    return svg;
  }

  function pressed(state) {
    state.up.setAttribute("aria-pressed", String(state.feedback === "up"));
    state.down.setAttribute("aria-pressed", String(state.feedback === "down"));
  }

  function feedbackUrl(state) {
    return `/api/v1/stream/sessions/${state.sessionId}/feedback`;
  }

  async function rate(state, body, focus) {
    let response;
    try {
      response = await api(feedbackUrl(state), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch {
      response = null;
    }
    if (!response?.ok) {
      state.note.textContent = t("feedback.failed");
      return false;
    }
    state.feedback = body.rating;
    pressed(state);
    state.note.textContent = t("feedback.thanks");
    focus.focus();
    return true;
  }

  async function withdraw(state, focus) {
    let response;
    try {
      response = await api(feedbackUrl(state), { method: "DELETE" });
    } catch {
      response = null;
    }
    if (!response || !(response.ok || response.status === 404)) {
      state.note.textContent = t("feedback.failed");
      return;
    }
    state.feedback = null;
    pressed(state);
    state.note.textContent = t("feedback.withdrawn");
    focus.focus();
  }

  // 👎's form: why (checkboxes) and an optional comment; Escape or Cancel closes it and the
  // focus goes back to 👎.
  function openReasons(state) {
    if (state.reasons) {
      state.reasons.querySelector("input")?.focus();
      return;
    }
    const form = el("form", "reasons");
    form.dataset.testid = "feedback-form";
    const fieldset = el("fieldset");
    const legend = el("legend", null, t("feedback.why"));
    legend.dataset.i18n = "feedback.why";
    fieldset.append(legend);
    for (const reason of REASONS) {
      const label = el("label", "reason");
      const box = el("input");
      box.type = "checkbox";
      box.name = "reason";
      box.value = reason;
      const text = el("span", null, t(`reason.${reason}`));
      text.dataset.i18n = `reason.${reason}`;
      label.append(box, " ", text);
      fieldset.append(label);
    }
    const commentLabel = el("label", "comment");
    const commentText = el("span", null, t("feedback.comment"));
    commentText.dataset.i18n = "feedback.comment";
    const comment = el("textarea");
    comment.name = "comment";
    comment.rows = 2;
    comment.maxLength = 2000;
    commentLabel.append(commentText, comment);
    const send = textButton("", "feedback.send", "feedback-send");
    send.type = "submit";
    const cancel = textButton("secondary", "feedback.cancel", "feedback-cancel");
    const buttons = el("div", "reasons-actions");
    buttons.append(send, cancel);
    form.append(fieldset, commentLabel, buttons);
    const close = () => {
      form.remove();
      state.reasons = null;
      state.down.setAttribute("aria-expanded", "false");
      state.down.focus();
    };
    cancel.addEventListener("click", close);
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const reasons = [...form.querySelectorAll("input[name=reason]:checked")].map((box) => box.value);
      send.disabled = true;
      if (await rate(state, { rating: "down", reasons, comment: comment.value.trim() }, state.down)) close();
      send.disabled = false;
    });
    state.reasons = form;
    state.down.setAttribute("aria-expanded", "true");
    state.actions.after(form);
    fieldset.querySelector("input").focus();
  }

  // One Regenerate button: under the latest answer, once it has ended (completed, failed or stopped).
  function placeRegenerate() {
    for (const old of conversation.querySelectorAll(".regenerate")) old.remove();
    const latest = conversation.lastElementChild?.chat;
    if (!latest || latest === current || !latest.sessionId || latest.actions.hidden) return;
    const button = textButton("secondary regenerate", "regenerate", "regenerate");
    button.addEventListener("click", () => ask(latest.query, latest.language || languageSelect.value, latest));
    latest.actions.insertBefore(button, latest.note);
  }

  function markRegenerated(state) {
    state.turn.classList.add("regenerated");
    if (state.turn.querySelector(".regenerated-note")) return;
    const note = el("p", "turn-note regenerated-note", t("turn.regenerated"));
    note.dataset.i18n = "turn.regenerated";
    state.turn.insertBefore(note, state.actions);
  }

  // --- Conversations (the sidebar) -----------------------------------------------------------
  // The REST API with the page's session: the same endpoints a JWT client uses.

  let nextConversations = null; // the list's next page, if any

  function api(url, options = {}) {
    return fetch(url, {
      credentials: "same-origin",
      ...options,
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken(), ...(options.headers || {}) },
    });
  }

  function conversationItem(item) {
    const li = el("li");
    li.dataset.id = item.id;
    li.classList.toggle("active", item.id === conversationId);
    const open = el("button", "open", item.title);
    open.type = "button";
    open.title = item.title;
    open.dataset.testid = "open-conversation";
    open.addEventListener("click", () => openConversation(item.id));
    const remove = el("button", "delete", "×");
    remove.type = "button";
    remove.dataset.testid = "delete-conversation";
    remove.setAttribute("aria-label", `${t("delete")}: ${item.title}`);
    remove.title = t("delete");
    remove.addEventListener("click", () => deleteConversation(item.id, item.title));
    li.append(open, remove);
    return li;
  }

  let listLoads = 0; // the newest reload of the list: an older answer that arrives later is stale

  async function loadConversations(url = "/api/v1/conversations/?page_size=50", append = false) {
    const load = append ? listLoads : ++listLoads;
    let body;
    try {
      const response = await api(url);
      if (!response.ok) return;
      body = await response.json();
    } catch {
      return; // the list is a convenience: the chat works without it
    }
    if (load !== listLoads) return;
    if (!append) conversationList.replaceChildren();
    for (const item of body.results) conversationList.append(conversationItem(item));
    nextConversations = body.next;
    moreConversations.hidden = !nextConversations;
    noConversations.hidden = conversationList.children.length > 0;
    stats.listed += 1;
  }

  function markActive() {
    for (const li of conversationList.children) li.classList.toggle("active", li.dataset.id === conversationId);
  }

  function setConversation(id) {
    conversationId = id;
    const hash = id ? `#conversation=${id}` : " ";
    if (location.hash !== hash) history.replaceState(null, "", hash === " " ? location.pathname : hash);
    markActive();
  }

  function newConversation() {
    stopCurrent();
    conversation.replaceChildren();
    setConversation(null);
    question.focus();
  }

  // A finished turn from the conversation's history, drawn like a streamed one.
  function showTurn(turn) {
    const state = newTurn(turn.query);
    state.sessionId = turn.id;
    state.language = turn.language;
    state.feedback = turn.feedback?.rating ?? null;
    for (const citation of turn.citations) addCitation(state, citation);
    state.text = turn.answer;
    finish(state, turn.status === "completed");
    const note = {
      cancelled: "turn.cancelled",
      error: "turn.failed",
      timeout: "turn.failed",
      interrupted: "turn.failed",
      streaming: "turn.streaming",
    }[turn.status];
    if (note) state.turn.insertBefore(el("p", "turn-note", t(note)), state.actions);
    return state;
  }

  async function openConversation(id) {
    stopCurrent();
    let body;
    try {
      const response = await api(`/api/v1/conversations/${id}`);
      if (response.status === 404) {
        newConversation();
        loadConversations();
        return;
      }
      if (!response.ok) throw new Error(String(response.status));
      body = await response.json();
    } catch {
      conversation.replaceChildren(el("div", "error-box", t("error.load")));
      return;
    }
    conversation.replaceChildren();
    setConversation(body.id);
    const last = body.turns[body.turns.length - 1];
    if (last) applyLanguage(last.language);
    const shown = new Map(body.turns.map((turn) => [turn.id, showTurn(turn)]));
    for (const turn of body.turns) if (shown.has(turn.regenerates)) markRegenerated(shown.get(turn.regenerates));
    question.focus();
  }

  async function deleteConversation(id, title) {
    if (!window.confirm(t("delete_conversation").replace("%(title)s", title))) return;
    let response;
    try {
      response = await api(`/api/v1/conversations/${id}`, { method: "DELETE" });
    } catch {
      return;
    }
    if (!response.ok && response.status !== 404) return;
    if (id === conversationId) newConversation();
    conversationList.querySelector(`li[data-id="${id}"]`)?.remove();
    noConversations.hidden = conversationList.children.length > 0;
  }

  // --- Page wiring --------------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = question.value.trim();
    if (!query) return;
    question.value = "";
    ask(query, languageSelect.value);
  });
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener("click", stopCurrent);
  newConversationButton.addEventListener("click", newConversation);
  moreConversations.addEventListener("click", () => nextConversations && loadConversations(nextConversations, true));

  // A marker and its source highlight each other (event delegation: no listener per element).
  function highlight(target, on) {
    const owner = target.closest?.("[data-marker]");
    const turn = owner?.closest(".turn");
    if (!owner || !turn) return;
    for (const node of turn.querySelectorAll(`[data-marker="${owner.dataset.marker}"]`)) {
      node.classList.toggle("highlight", on);
    }
  }
  for (const [name, on] of [["mouseover", true], ["mouseout", false], ["focusin", true], ["focusout", false]]) {
    conversation.addEventListener(name, (event) => highlight(event.target, on));
  }

  applyLanguage(uiLanguage);
  loadConversations();
  const linked = location.hash.match(/^#conversation=(.+)$/);
  if (linked && UUID.test(linked[1])) openConversation(linked[1]);
  question.focus();
})();

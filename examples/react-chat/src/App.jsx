import { useEffect, useMemo, useState } from "react";
import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport } from "ai";
import { EVI360 } from "./api.js";
import { authHeaders, signIn, signOut, signedIn } from "./auth.js";

const API = `${EVI360}/api/v1/chat`;

// The chat id is the conversation's id on the server. It is kept in the address (?chat=) so a
// reload asks the server for the same chat's running answer (`resume: true`).
function chatIdFromUrl() {
  const url = new URL(window.location.href);
  let id = url.searchParams.get("chat");
  if (!id) {
    id = crypto.randomUUID();
    url.searchParams.set("chat", id);
    window.history.replaceState(null, "", url);
  }
  return id;
}

// The SDK keeps messages in memory only; this example keeps them in sessionStorage so the
// question is still on the page after a reload (the resumed stream brings the answer back).
const storageKey = (id) => `evi360-chat:${id}`;
const storedMessages = (id) => JSON.parse(sessionStorage.getItem(storageKey(id)) ?? "[]");

const safeHref = (url) => (/^https?:\/\//i.test(url ?? "") ? url : undefined);

export default function App() {
  const [authenticated, setAuthenticated] = useState(signedIn);
  if (!authenticated) return <SignIn onSignedIn={() => setAuthenticated(true)} />;
  return (
    <Chat
      onSignOut={() => {
        signOut();
        setAuthenticated(false);
      }}
    />
  );
}

function SignIn({ onSignedIn }) {
  const [error, setError] = useState(null);
  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    try {
      await signIn(form.get("username"), form.get("password"));
      onSignedIn();
    } catch (e) {
      setError(e.message);
    }
  }
  return (
    <form className="sign-in" onSubmit={submit}>
      <h1>EVI 360</h1>
      <label>
        Username <input name="username" autoComplete="username" required />
      </label>
      <label>
        Password <input name="password" type="password" autoComplete="current-password" required />
      </label>
      <button type="submit">Sign in</button>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}

function Chat({ onSignOut }) {
  const [id, setId] = useState(chatIdFromUrl);
  const transport = useMemo(
    // headers is a function: it is read before every request, so a refreshed token is used.
    () => new DefaultChatTransport({ api: API, headers: authHeaders }),
    [],
  );
  const initialMessages = useMemo(() => storedMessages(id), [id]);
  const { messages, sendMessage, status, stop, error } = useChat({
    id,
    messages: initialMessages,
    transport,
    resume: true,
  });
  const [input, setInput] = useState("");
  const busy = status === "submitted" || status === "streaming";

  useEffect(() => {
    sessionStorage.setItem(storageKey(id), JSON.stringify(messages));
  }, [id, messages]);

  function ask(event) {
    event.preventDefault();
    if (!input.trim() || busy) return;
    sendMessage({ text: input });
    setInput("");
  }

  // With a resumable stream, the SDK's stop() only disconnects: the server is told to stop first.
  async function stopAnswer() {
    try {
      await fetch(`${API}/${encodeURIComponent(id)}/stop`, { method: "POST", headers: await authHeaders() });
    } finally {
      stop();
    }
  }

  function newChat() {
    const url = new URL(window.location.href);
    url.searchParams.delete("chat");
    window.history.replaceState(null, "", url);
    setId(chatIdFromUrl());
  }

  return (
    <main data-testid="chat" data-status={status}>
      <header>
        <h1>EVI 360</h1>
        <button type="button" onClick={newChat} disabled={busy}>
          New chat
        </button>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <ol className="messages">
        {messages.map((message) =>
          message.role === "user" ? (
            <li key={message.id} className="question" data-testid="user-message">
              {textOf(message)}
            </li>
          ) : (
            <Answer key={message.id} message={message} />
          ),
        )}
      </ol>
      {error && (
        <p className="error" role="alert" data-testid="error">
          {error.message}
        </p>
      )}
      <form className="ask" onSubmit={ask}>
        <textarea
          data-testid="question"
          value={input}
          onChange={(e) => setInput(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey) ask(e);
          }}
          placeholder="Ask a question about occupational health and safety"
        />
        {busy ? (
          <button type="button" data-testid="stop" onClick={stopAnswer}>
            Stop
          </button>
        ) : (
          <button type="submit" data-testid="send">
            Send
          </button>
        )}
      </form>
    </main>
  );
}

const textOf = (message) =>
  message.parts
    .filter((part) => part.type === "text")
    .map((part) => part.text)
    .join("");

// EVI 360 puts the cited passage in the part's providerMetadata (plain text, not Markdown).
const snippetOf = (source) => source.providerMetadata?.evi360?.snippet;

// The answer beside its sources: `source-url` parts are links, `source-document` parts (a source
// without a URL) are titles; each is labelled with its marker [n] (its sourceId) as the text
// cites it. The metadata carries the session id and the answer's language.
function Answer({ message }) {
  const sources = message.parts.filter((p) => p.type === "source-url" || p.type === "source-document");
  const { sessionId, language, model } = message.metadata ?? {};
  return (
    <li className="answer" data-testid="answer" lang={language}>
      <div className="answer-text">
        <p data-testid="answer-text">{textOf(message)}</p>
        <p className="meta">
          {language && <span data-testid="language">{language}</span>}
          {model && <span data-testid="model">{model}</span>}
          {sessionId && <span data-testid="session">{sessionId}</span>}
        </p>
      </div>
      <aside className="sources" data-testid="sources">
        <h2>Sources</h2>
        <ul>
          {sources.map((source) => (
            <li key={source.sourceId} data-testid="source">
              <span className="marker">[{source.sourceId}]</span>{" "}
              {source.type === "source-url" && safeHref(source.url) ? (
                <a href={safeHref(source.url)} target="_blank" rel="noopener noreferrer">
                  {source.title ?? source.url}
                </a>
              ) : (
                <span>{source.title ?? source.filename ?? source.sourceId}</span>
              )}
              {snippetOf(source) && <p className="snippet">{snippetOf(source)}</p>}
            </li>
          ))}
        </ul>
      </aside>
    </li>
  );
}

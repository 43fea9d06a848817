// The AI SDK's own client (the `ai` package: DefaultChatTransport, readUIMessageStream) against
// a live server. Run by tests/clients/test_ai_sdk.py: `node client.mjs <scenario>` with BASE_URL,
// TOKEN and CHAT_ID in the environment; prints one JSON object with what the client saw.
import { DefaultChatTransport, readUIMessageStream } from "ai";

const { BASE_URL, TOKEN, CHAT_ID } = process.env;
const transport = new DefaultChatTransport({
  api: `${BASE_URL}/api/v1/chat`,
  headers: { Authorization: `Bearer ${TOKEN}` },
});
const question = (text) => ({ id: `u-${Date.now()}`, role: "user", parts: [{ type: "text", text }] });

// The chunks as they arrive (their types), and the message readUIMessageStream builds of them.
async function read(stream) {
  const types = [];
  const [counted, built] = stream.tee();
  const counting = (async () => {
    for await (const chunk of counted) types.push(chunk.type);
  })();
  let message;
  let error;
  try {
    // terminateOnError: an error chunk ends the messages with that error, as useChat's status.
    for await (const m of readUIMessageStream({ stream: built, terminateOnError: true })) message = m;
  } catch (e) {
    error = e.message;
  }
  await counting.catch(() => {});
  return { types, message, error };
}

function send(text, extra = {}) {
  return transport.sendMessages({
    chatId: CHAT_ID,
    messages: [question(text)],
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: extra.signal,
    ...extra,
  });
}

const scenarios = {
  // A whole answer: text, sources, metadata.
  async answer() {
    return read(await send(process.env.QUESTION));
  },
  // A refusal before the stream: the transport throws the API's error (our JSON).
  async refused() {
    try {
      await transport.sendMessages({ chatId: "not/a chat", messages: [question("x")], trigger: "submit-message" });
      return { thrown: null };
    } catch (e) {
      return { thrown: e.name, statusCode: e.statusCode, body: JSON.parse(e.responseBody) };
    }
  },
  // Nothing running: reconnectToStream gets a 204 and returns null.
  async idle() {
    return { stream: await transport.reconnectToStream({ chatId: CHAT_ID }) };
  },
  // A reload mid-answer: the first response is dropped after its first text, reconnectToStream
  // replays the running answer from its start; then the chat's stop endpoint stops it.
  async resume() {
    const controller = new AbortController();
    const first = (await send(process.env.QUESTION, { signal: controller.signal })).getReader();
    const before = [];
    for (;;) {
      const { value, done } = await first.read();
      if (done) break;
      before.push(value.type);
      if (value.type === "text-delta") break;
    }
    controller.abort(); // the page goes away
    await first.cancel().catch(() => {});
    const resumed = await transport.reconnectToStream({ chatId: CHAT_ID });
    const reader = resumed.getReader();
    const replayed = [];
    let text = "";
    let stopped;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      replayed.push(value);
      if (value.type === "text-delta") text += value.delta;
      if (value.type === "text-delta" && stopped === undefined && replayed.filter((c) => c.type === "text-delta").length >= 3) {
        const response = await fetch(`${BASE_URL}/api/v1/chat/${CHAT_ID}/stop`, {
          method: "POST",
          headers: { Authorization: `Bearer ${TOKEN}` },
        });
        stopped = { status: response.status, body: await response.json() };
      }
    }
    const after = await transport.reconnectToStream({ chatId: CHAT_ID });
    return { before, replayed: replayed.map((c) => c.type), last: replayed.at(-1), text, stopped, afterStop: after };
  },
};

// Any promise the client left rejected: recorded (the tests expect none), not a crash.
const unhandled = [];
process.on("unhandledRejection", (e) => unhandled.push(e.message));
const result = await scenarios[process.argv[2]]();
process.on("exit", () => process.stdout.write(JSON.stringify({ ...result, unhandled })));

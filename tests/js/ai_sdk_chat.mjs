// Drive a trio_stream /api/chat endpoint with the real AI SDK client (v5):
// DefaultChatTransport sends the request and validates every part of the UI
// message stream against the SDK's schema; readUIMessageStream assembles the
// UIMessage exactly as useChat would.
//
// usage: node ai_sdk_chat.mjs <api-url> <chat-id> [resume | reconnect-only]
// prints one JSON line: {"message": <last UIMessage>, "errors": [...], "resumed": ...}
import { DefaultChatTransport, readUIMessageStream } from "ai";

const [api, chatId, mode] = process.argv.slice(2);
const transport = new DefaultChatTransport({ api });

async function consume(stream) {
  const errors = [];
  let message = null;
  for await (const snapshot of readUIMessageStream({
    stream,
    onError: (error) => errors.push(String(error?.message ?? error)),
  })) {
    message = snapshot;
  }
  return { message, errors };
}

let result = { message: null, errors: [] };
if (mode !== "reconnect-only") {
  const stream = await transport.sendMessages({
    trigger: "submit-message",
    chatId,
    messageId: undefined,
    messages: [{ id: "u1", role: "user", parts: [{ type: "text", text: "hi there" }] }],
    abortSignal: undefined,
  });
  result = await consume(stream);
}
if (mode === "resume" || mode === "reconnect-only") {
  const again = await transport.reconnectToStream({ chatId });
  result.resumed = again === null ? null : await consume(again);
}
console.log(JSON.stringify(result));

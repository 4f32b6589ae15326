// An LLM answer streamed with fetch (POST /v1/chat/completions, stream: true), with Stop.
//
// EventSource cannot POST, so the body is read with a stream reader and parsed
// here. Stop aborts the fetch: the connection closes, the server sees the
// disconnect, cancels the answer and closes its upstream request.

import { errorText, h, jsonHeaders, setStatus } from "./ui.js";

/** Incremental text/event-stream parser: feed(text) returns the complete events' data. */
class EventParser {
  constructor() {
    this.buffer = "";
    this.data = [];
  }

  feed(text) {
    this.buffer += text;
    const events = [];
    // A trailing "\r" may be half of a "\r\n" split across reads: its line waits.
    const hold = this.buffer.endsWith("\r") ? "\r" : "";
    const lines = (hold ? this.buffer.slice(0, -1) : this.buffer).split(/\r\n|\r|\n/);
    this.buffer = lines.pop() + hold; // the last piece is an unfinished line
    for (const line of lines) {
      if (line === "") {
        if (this.data.length) events.push(this.data.join("\n"));
        this.data = [];
      } else if (line.startsWith("data:")) {
        this.data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
    }
    return events;
  }
}

export function startAnswers(config, state) {
  const $ = (id) => document.getElementById(id);
  const pill = $("llm-status");
  const output = $("llm-answer");
  const askButton = $("llm-ask");
  const stopButton = $("llm-stop");
  // chunks: content chunks received; the relay may merge several tokens into one.
  const llm = (state.llm = { text: "", chunks: 0, status: "idle", answers: 0 });
  let controller = null;

  function finish(status, label, note) {
    llm.status = status;
    setStatus(pill, status, label);
    output.classList.remove("streaming");
    if (note) output.append(h("span", { className: "note" }, note));
    askButton.disabled = false;
    stopButton.disabled = true;
    controller = null;
  }

  function onChunk(chunk, started) {
    if (chunk.error) throw new Error(chunk.error.message || "the model failed");
    if (chunk.model && chunk.model !== "unknown") $("llm-model").textContent = chunk.model;
    for (const choice of chunk.choices || []) {
      const text = choice.delta && choice.delta.content;
      if (!text) continue;
      if (!llm.chunks) $("llm-ttft").textContent = `${Math.round(performance.now() - started)} ms`;
      llm.chunks += 1;
      llm.text += text;
      output.append(llm.text === text ? text.trimStart() : text); // no indent on line one
      $("llm-chunks").textContent = String(llm.chunks);
    }
  }

  async function ask(prompt) {
    controller = new AbortController();
    llm.text = "";
    llm.chunks = 0;
    llm.answers += 1;
    llm.status = "streaming";
    output.textContent = "";
    output.classList.add("streaming");
    $("llm-chunks").textContent = "0";
    $("llm-ttft").textContent = "—";
    askButton.disabled = true;
    stopButton.disabled = false;
    setStatus(pill, "streaming", "streaming");
    const started = performance.now();
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: jsonHeaders(),
        body: JSON.stringify({
          messages: [{ role: "user", content: prompt }],
          stream: true,
          stream_options: { include_usage: true },
        }),
        signal: controller.signal,
      });
      if (!response.ok) throw new Error(await errorText(response));
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      const parser = new EventParser();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const data of parser.feed(decoder.decode(value, { stream: true }))) {
          if (data === "[DONE]") {
            finish("connected", "done");
            return;
          }
          onChunk(JSON.parse(data), started);
        }
      }
      finish("error", "cut short", "The stream ended before the answer was complete.");
    } catch (error) {
      if (error.name === "AbortError") {
        finish("stopped", "stopped", "Stopped: closing the stream made the server cancel the answer.");
      } else {
        finish("error", "failed", `Error: ${error.message}`);
      }
    }
  }

  $("llm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const prompt = $("llm-input").value.trim();
    if (prompt && !controller) ask(prompt);
  });
  stopButton.addEventListener("click", () => {
    if (controller) controller.abort();
  });
}

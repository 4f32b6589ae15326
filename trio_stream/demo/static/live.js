// LiveTopic: an EventSource that reports its state and never gives up.
//
// The browser's EventSource already reconnects after a dropped stream and sends
// Last-Event-ID, so the server resumes exactly after the last event seen. Two
// cases need help: when the browser gives up (readyState CLOSED, e.g. a 503 while
// the server restarts) a new EventSource is made with ?last_event_id=, since a
// fresh EventSource cannot set the header; and when the server answers "reset"
// (the id is no longer in its history) the owner throws its state away.

import { backoff } from "./ui.js";

export class LiveTopic {
  /**
   * @param {string} path        e.g. "/sse/ticker"
   * @param {object} options     handlers: {type: fn(MessageEvent)}, onReset(), onStatus(state,
   *                             label), lastEventId: resume after this id on the first connection
   */
  constructor(path, { handlers = {}, onReset = () => {}, onStatus = () => {}, lastEventId = "" }) {
    this.path = path;
    this.handlers = handlers;
    this.onReset = onReset;
    this.onStatus = onStatus;
    this.lastEventId = lastEventId;
    this.source = null;
    this.dropped = false;   // a connection was lost and not yet re-established
    this.failures = 0;      // re-creations in a row without a successful open
    this.reconnects = 0;
    this.resumes = [];      // the ids each reconnection resumed after
    this.resets = 0;
    this.timer = null;
    this.stopped = false;
  }

  start() {
    this.onStatus("connecting", "connecting");
    this.connect();
    return this;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
  }

  connect() {
    const separator = this.path.includes("?") ? "&" : "?";
    const query = this.lastEventId
      ? `${separator}last_event_id=${encodeURIComponent(this.lastEventId)}`
      : "";
    const source = (this.source = new EventSource(this.path + query));
    source.onopen = () => this.opened();
    source.onerror = () => this.failed(source);
    for (const [type, handler] of Object.entries(this.handlers)) {
      source.addEventListener(type, (event) => {
        if (event.lastEventId) this.lastEventId = event.lastEventId;
        handler(event);
      });
    }
    source.addEventListener("reset", (event) => this.resetEvent(event));
  }

  resetEvent() {
    this.resets += 1;
    this.lastEventId = "";
    this.onReset();
    this.onStatus("reset", "history lost · state reset");
  }

  opened() {
    this.failures = 0;
    if (!this.dropped) {
      this.onStatus("connected", "connected");
      return;
    }
    this.dropped = false;
    this.reconnects += 1;
    if (this.lastEventId) {
      this.resumes.push(this.lastEventId);
      this.onStatus("resumed", `resumed from id ${this.lastEventId}`);
    } else {
      this.onStatus("connected", "connected");
    }
  }

  failed(source) {
    if (this.stopped || source !== this.source) return;
    this.dropped = true;
    this.onStatus("reconnecting", "reconnecting…");
    if (source.readyState !== EventSource.CLOSED) return; // the browser retries by itself
    source.close();
    this.timer = setTimeout(() => this.connect(), backoff(this.failures));
    this.failures += 1;
  }
}

// LiveTopics: several topics on ONE EventSource (GET /sse?topic=a&topic=b...).
//
// A browser opens at most 6 HTTP/1.1 connections per server, so a page that
// follows many topics shares one stream. Each event's id is a multi-topic id,
// "m1;<set>;<index>;<prefix>;<entries>": the event's topic is topics[index],
// and the id holds the stream's position in EVERY topic, so the browser's own
// reconnection (Last-Event-ID) resumes them all with no gap and no duplicate.
//
// Changing the topic list means a new EventSource. An id issued for another
// list would reset every topic, so the page builds the new list's id itself
// from the positions it saw: the <set> field is BLAKE2b-32 of the topic names
// joined with "\n" (no Web Crypto API offers BLAKE2b, hence the small
// implementation below). A topic with no known position starts live ("!").

import { LiveTopic } from "./live.js";

const MASK = (1n << 64n) - 1n;
const IV = [
  0x6a09e667f3bcc908n, 0xbb67ae8584caa73bn, 0x3c6ef372fe94f82bn, 0xa54ff53a5f1d36f1n,
  0x510e527fade682d1n, 0x9b05688c2b3e6c1fn, 0x1f83d9abfb41bd6bn, 0x5be0cd19137e2179n,
];
const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

const rotr = (x, n) => ((x >> n) | (x << (64n - n))) & MASK;

function compress(h, block, counter, last) {
  const m = [];
  for (let i = 0; i < 16; i += 1) {
    let word = 0n;
    for (let b = 7; b >= 0; b -= 1) word = (word << 8n) | BigInt(block[i * 8 + b]);
    m.push(word);
  }
  const v = [...h, ...IV];
  v[12] ^= counter & MASK;
  if (last) v[14] ^= MASK;
  const g = (a, b, c, d, x, y) => {
    v[a] = (v[a] + v[b] + x) & MASK;
    v[d] = rotr(v[d] ^ v[a], 32n);
    v[c] = (v[c] + v[d]) & MASK;
    v[b] = rotr(v[b] ^ v[c], 24n);
    v[a] = (v[a] + v[b] + y) & MASK;
    v[d] = rotr(v[d] ^ v[a], 16n);
    v[c] = (v[c] + v[d]) & MASK;
    v[b] = rotr(v[b] ^ v[c], 63n);
  };
  for (let round = 0; round < 12; round += 1) {
    const s = SIGMA[round % 10];
    g(0, 4, 8, 12, m[s[0]], m[s[1]]);
    g(1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(2, 6, 10, 14, m[s[4]], m[s[5]]);
    g(3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(0, 5, 10, 15, m[s[8]], m[s[9]]);
    g(1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(2, 7, 8, 13, m[s[12]], m[s[13]]);
    g(3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
  for (let i = 0; i < 8; i += 1) h[i] ^= v[i] ^ v[i + 8];
}

/** BLAKE2b (unkeyed) of a string's UTF-8 bytes, `size` bytes, as hex. */
export function blake2bHex(text, size) {
  const data = new TextEncoder().encode(text);
  const h = [...IV];
  h[0] ^= 0x01010000n ^ BigInt(size);
  const blocks = Math.max(1, Math.ceil(data.length / 128));
  for (let i = 0; i < blocks; i += 1) {
    const block = new Uint8Array(128);
    block.set(data.subarray(i * 128, (i + 1) * 128));
    const last = i === blocks - 1;
    compress(h, block, BigInt(last ? data.length : (i + 1) * 128), last);
  }
  let hex = "";
  for (let i = 0; i < size; i += 1) {
    hex += Number((h[i >> 3] >> BigInt((i & 7) * 8)) & 0xffn).toString(16).padStart(2, "0");
  }
  return hex;
}

/** Python's urllib.parse.quote(text, safe=":"): how the server quotes positions. */
export function quotePosition(text) {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replaceAll("%3A", ":");
}

/** The id a stream of `topics` resumes from; `quoted` maps a topic to its quoted position. */
export function topicsEventId(topics, quoted) {
  const digest = blake2bHex(topics.join("\n"), 4);
  const entries = topics.map((topic) => quoted[topic] ?? "!");
  return `m1;${digest};0;;${entries.join(",")}`;
}

export class LiveTopics extends LiveTopic {
  /**
   * @param {object} options  handlers: {type: fn(MessageEvent, topic)}, onReset(topic),
   *                          onStatus(state, label)
   */
  constructor({ handlers = {}, onReset = () => {}, onStatus = () => {} }) {
    super("/sse", { onStatus });
    this.topics = [];
    this.quoted = {}; // topic → its last position, quoted as in the ids
    this.topicHandlers = handlers;
    this.onTopicReset = onReset;
    this.handlers = Object.fromEntries(
      Object.keys(handlers).map((type) => [type, (event) => this.dispatch(type, event)]),
    );
  }

  topicOf(event) {
    return this.topics[Number(event.lastEventId.split(";")[2])];
  }

  seen(event) {
    // Remember every topic's position: the next topic list resumes from them.
    const [, , , prefix, entries] = event.lastEventId.split(";");
    entries.split(",").forEach((entry, index) => {
      if (entry !== "!") this.quoted[this.topics[index]] = prefix + entry;
    });
  }

  dispatch(type, event) {
    this.seen(event);
    this.topicHandlers[type](event, this.topicOf(event));
  }

  resetEvent(event) {
    // One topic could not be resumed; the id is still good for the others.
    this.seen(event);
    this.lastEventId = event.lastEventId;
    this.resets += 1;
    this.onTopicReset(this.topicOf(event));
  }

  /** Follow `topics` (in this order); `positions` maps new topics to a Hub id to resume after. */
  follow(topics, positions = {}) {
    for (const [topic, id] of Object.entries(positions)) {
      if (id && !(topic in this.quoted)) this.quoted[topic] = quotePosition(id);
    }
    if (this.source) this.source.close();
    clearTimeout(this.timer);
    this.topics = [...topics];
    this.dropped = false;
    if (!this.topics.length) {
      this.source = null;
      this.onStatus("idle", "idle");
      return this;
    }
    this.path = `/sse?${this.topics.map((t) => `topic=${encodeURIComponent(t)}`).join("&")}`;
    this.lastEventId = topicsEventId(this.topics, this.quoted);
    this.connect();
    return this;
  }
}

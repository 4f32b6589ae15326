// Chat over a WebSocket (ws://host:ws-port/ws/chat) with presence and resume.

import { backoff, h, params, setStatus } from "./ui.js";

const ADJECTIVES = ["Swift", "Quiet", "Brave", "Clever", "Sunny", "Lucky", "Calm", "Bold"];
const ANIMALS = ["Otter", "Falcon", "Panda", "Lynx", "Heron", "Koala", "Fox", "Orca"];
const KEEP_MESSAGES = 200;
const FORBIDDEN = 4003; // CloseCode.FORBIDDEN: publishing needs the token

function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

function myName() {
  const given = params.get("name");
  if (given) return given.trim().slice(0, 32);
  let name = sessionStorage.getItem("trio-stream-name");
  if (!name) {
    name = `${pick(ADJECTIVES)} ${pick(ANIMALS)}`;
    sessionStorage.setItem("trio-stream-name", name);
  }
  return name;
}

function hue(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

export function startChat(config, state) {
  const $ = (id) => document.getElementById(id);
  const pill = $("chat-status");
  const list = $("chat-messages");
  const input = $("chat-input");
  const sendButton = $("chat-send");
  const name = myName();
  const token = params.get("token");
  const chat = (state.chat = { name, messages: [], users: [], connections: 0, resets: 0 });
  let socket = null;
  let lastEventId = "";
  let attempts = 0;
  let readOnly = config.tokenRequired && !token;
  $("chat-name").textContent = name;

  function url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams({ name });
    if (token) query.set("token", token);
    if (lastEventId) query.set("last_event_id", lastEventId);
    return `${scheme}://${location.hostname}:${config.wsPort}/ws/chat?${query}`;
  }

  function scrollDown() {
    list.scrollTop = list.scrollHeight;
  }

  function addSystem(text) {
    list.append(h("li", { className: "message system" }, text));
    scrollDown();
  }

  function addMessage(message) {
    let who = "anonymous";
    let text = message.data;
    try {
      const parsed = JSON.parse(message.data);
      if (parsed && typeof parsed.text === "string") {
        who = String(parsed.name || who);
        text = parsed.text;
      }
    } catch (_) {
      // plain text published on the topic (curl -d '{"data": "hi"}' .../api/topics/chat)
    }
    chat.messages.push({ id: message.id, name: who, text });
    if (chat.messages.length > KEEP_MESSAGES) chat.messages.shift();
    const mine = who === name;
    const item = h(
      "li",
      { className: `message${mine ? " mine" : ""}`, dataset: { id: message.id || "" } },
      h("div", { className: "who" }, mine ? "you" : who),
      h("div", { className: "bubble" }, text),
    );
    list.append(item);
    while (list.children.length > KEEP_MESSAGES) list.firstElementChild.remove();
    scrollDown();
  }

  function showUsers(users) {
    chat.users = users;
    $("chat-online").textContent = `${users.length} online`;
    const avatars = $("chat-users");
    avatars.replaceChildren(
      ...users.map((user) => {
        const initial = h("span", { className: "initial" }, user.slice(0, 1).toUpperCase());
        initial.style.background = `hsl(${hue(user)} 60% 48%)`;
        return h("li", { className: user === name ? "me" : "", title: user }, initial, user);
      }),
    );
  }

  function onMessage(raw) {
    let message;
    try {
      message = JSON.parse(raw.data);
    } catch (_) {
      return;
    }
    if (message.id) lastEventId = message.id;
    if (message.event === "presence") {
      try {
        showUsers(JSON.parse(message.data).users || []);
      } catch (_) {
        // not a presence list: ignore
      }
    } else if (message.event === "reset") {
      chat.resets += 1;
      chat.messages = [];
      list.replaceChildren();
      addSystem("Earlier messages are no longer available: the server restarted.");
      setStatus(pill, "reset", "history lost · state reset");
    } else {
      addMessage(message);
    }
  }

  function connect() {
    const ws = (socket = new WebSocket(url()));
    ws.onopen = () => {
      chat.connections += 1;
      const resumed = attempts > 0 || chat.connections > 1;
      attempts = 0;
      setStatus(pill, resumed && lastEventId ? "resumed" : "connected",
        resumed && lastEventId ? `resumed from id ${lastEventId}` : "connected");
      sendButton.disabled = readOnly;
      sendButton.title = readOnly ? "open the page with ?token=… to chat" : "";
    };
    ws.onmessage = onMessage;
    ws.onclose = (event) => {
      if (socket !== ws) return;
      sendButton.disabled = true;
      if (event.code === FORBIDDEN) readOnly = true;
      setStatus(pill, "reconnecting", "reconnecting…");
      setTimeout(connect, backoff(attempts));
      attempts += 1;
    };
  }

  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN || readOnly) return;
    socket.send(JSON.stringify({ data: { name, text } }));
    input.value = "";
  });

  setStatus(pill, "connecting", "connecting");
  connect();
}

// Small DOM helpers shared by the page's widgets.

/** Create an element: h("li", {className: "x"}, "text", child). */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(element.dataset, value);
    else element[key] = value;
  }
  for (const child of children) {
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Show a connection state on a status pill: data-state drives its colour. */
export function setStatus(pill, state, label) {
  pill.dataset.state = state;
  pill.querySelector(".label").textContent = label;
  pill.title = label;
}

/** The page's query parameters (token, name). */
export const params = new URLSearchParams(location.search);

/** Headers for a JSON POST, with the bearer token when the page was opened with ?token=. */
export function jsonHeaders() {
  const headers = { "content-type": "application/json" };
  const token = params.get("token");
  if (token) headers.authorization = `Bearer ${token}`;
  return headers;
}

/** Delay before reconnect attempt n (0, 1, 2...): exponential, capped, with jitter. */
export function backoff(attempt, initial = 500, maximum = 10000) {
  const base = Math.min(maximum, initial * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

/** A short, stable-looking id for display: "…last 10 characters". */
export function shortId(id) {
  if (!id) return "—";
  return id.length > 12 ? `…${id.slice(-10)}` : id;
}

/** The message of an error answer (OpenAI-style {"error": {"message"}}), else the status. */
export async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) {
    // not JSON: fall through to the status line
  }
  return `HTTP ${response.status}`;
}

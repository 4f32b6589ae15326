// The live ticker: tick events from /sse/ticker, a sparkline of recent values.

import { LiveTopic } from "./live.js";
import { setStatus, shortId } from "./ui.js";

const WINDOW = 60;          // values drawn in the chart
const KEEP_RECEIVED = 2000; // ids kept for inspection (window.trioStreamDemo)
const WIDTH = 600;
const HEIGHT = 160;
const PAD = 10;

export function startTicker(config, state) {
  const $ = (id) => document.getElementById(id);
  const pill = $("ticker-status");
  const chart = $("ticker-chart");
  const ticker = (state.ticker = {
    received: [],   // {id, seq} of every tick, in arrival order
    missed: 0,      // seq numbers skipped between two ticks: always 0 when resuming works
    live: null,
  });
  let values = [];
  let lastSeq = null;
  let count = 0;

  function draw() {
    const line = chart.querySelector(".line");
    const area = chart.querySelector(".area");
    const head = chart.querySelector(".head");
    if (values.length < 2) {
      line.setAttribute("points", "");
      area.setAttribute("d", "");
      head.setAttribute("cx", "-10");
      return;
    }
    const low = Math.min(...values);
    const high = Math.max(...values);
    const span = high - low || 1;
    const step = WIDTH / (WINDOW - 1);
    const offset = (WINDOW - values.length) * step;
    const points = values.map((v, i) => [
      offset + i * step,
      HEIGHT - PAD - ((v - low) / span) * (HEIGHT - 2 * PAD),
    ]);
    const text = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
    line.setAttribute("points", text);
    area.setAttribute("d", `M${offset},${HEIGHT} L${text.replaceAll(" ", " L")} L${WIDTH},${HEIGHT} Z`);
    const [x, y] = points[points.length - 1];
    head.setAttribute("cx", x.toFixed(1));
    head.setAttribute("cy", y.toFixed(1));
  }

  function showValue(value) {
    $("ticker-value").textContent = value.toFixed(2);
    const change = $("ticker-change");
    if (values.length > 1) {
      const first = values[0];
      const pct = ((value - first) / first) * 100;
      change.textContent = `${pct >= 0 ? "▲" : "▼"} ${Math.abs(pct).toFixed(2)}%`;
      change.className = `change ${pct >= 0 ? "up" : "down"}`;
    } else {
      change.textContent = "";
    }
  }

  function onTick(event) {
    let tick;
    try {
      tick = JSON.parse(event.data);
    } catch (_) {
      return; // someone published something else on the topic: not a tick
    }
    if (typeof tick.value !== "number" || typeof tick.seq !== "number") return;
    if (lastSeq !== null && tick.seq > lastSeq + 1) ticker.missed += tick.seq - lastSeq - 1;
    lastSeq = tick.seq;
    count += 1;
    values.push(tick.value);
    if (values.length > WINDOW) values = values.slice(-WINDOW);
    ticker.received.push({ id: event.lastEventId, seq: tick.seq });
    if (ticker.received.length > KEEP_RECEIVED) ticker.received.shift();
    showValue(tick.value);
    draw();
    $("ticker-count").textContent = String(count);
    $("ticker-last-id").textContent = shortId(event.lastEventId);
    $("ticker-last-id").title = event.lastEventId;
    $("ticker-missed").textContent = String(ticker.missed);
  }

  function onReset() {
    // The server no longer knows where we were (it restarted): start over, live.
    values = [];
    lastSeq = null;
    ticker.received.push({ id: null, seq: null, reset: true });
    $("ticker-value").textContent = "—";
    $("ticker-change").textContent = "";
    draw();
  }

  ticker.live = new LiveTopic(`/sse/${config.tickerTopic}`, {
    handlers: { tick: onTick },
    onReset,
    onStatus: (stateName, label) => {
      setStatus(pill, stateName, label);
      $("ticker-reconnects").textContent = String(ticker.live ? ticker.live.reconnects : 0);
    },
  }).start();
  if (!config.tickerInterval) setStatus(pill, "offline", "ticker off");
}

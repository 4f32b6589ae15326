// Background jobs: POST /api/jobs, then follow the job's topic over SSE.
//
// Over HTTP/1.1 a browser opens at most 6 connections per server, and every live
// event stream holds one: with the ticker and an LLM answer, 3 job streams at a
// time leave room for the page's other requests.

import { LiveTopic } from "./live.js";
import { errorText, h, jsonHeaders } from "./ui.js";

const MAX_LIVE_JOBS = 3;
const MAX_ROWS = 20;

export function startJobs(config, state) {
  const $ = (id) => document.getElementById(id);
  const list = $("jobs-list");
  const button = $("job-start");
  const jobs = (state.jobs = {});
  const rows = []; // newest first: {item, stop}
  let live = 0;

  function updateButton() {
    button.disabled = live >= MAX_LIVE_JOBS;
    button.title = button.disabled ? `at most ${MAX_LIVE_JOBS} jobs at a time` : "";
  }

  function row(job) {
    const fill = h("div", { className: "fill" });
    const bar = h("div", { className: "bar" }, fill);
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-valuenow", "0");
    bar.setAttribute("aria-label", `job ${job.id}`);
    const pct = h("span", { className: "pct" }, "queued");
    const item = h(
      "li",
      { className: "job", id: `job-${job.id}`, dataset: { state: "queued" } },
      h("div", { className: "job-head" }, h("span", { className: "name" }, `job ${job.id}`), pct),
      bar,
    );
    list.prepend(item);
    return { item, bar, fill, pct };
  }

  function follow(job) {
    $("jobs-empty").hidden = true;
    const view = row(job);
    const record = (jobs[job.id] = { percent: 0, state: "queued" });
    let following = true;
    live += 1;
    const stop = () => {
      if (!following) return;
      following = false;
      live -= 1;
      stream.close();
      updateButton();
    };
    const show = (progress, stateName, label) => {
      record.percent = progress;
      record.state = stateName;
      view.item.dataset.state = stateName;
      view.bar.setAttribute("aria-valuenow", String(progress));
      view.fill.style.width = `${progress}%`;
      view.pct.textContent = label;
    };
    const update = (event) => {
      const progress = JSON.parse(event.data);
      show(progress.percent, progress.state, `${progress.percent}%`);
    };
    const stream = new LiveTopic(`/sse/${job.topic}`, {
      lastEventId: job.last_event_id,
      handlers: {
        progress: update,
        done: (event) => {
          update(event);
          show(100, "done", "done · 100%");
          stop();
        },
      },
      onReset: () => {
        show(record.percent, "lost", "lost in a restart");
        stop();
      },
      onStatus: (stateName) => {
        if (stateName === "reconnecting" && record.state !== "done") view.pct.textContent = "reconnecting…";
      },
    }).start();
    rows.unshift({ item: view.item, stop });
    while (rows.length > MAX_ROWS) {
      const oldest = rows.pop();
      oldest.stop();
      oldest.item.remove();
    }
    updateButton();
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const response = await fetch("/api/jobs", { method: "POST", headers: jsonHeaders(), body: "{}" });
      if (!response.ok) throw new Error(await errorText(response));
      follow(await response.json());
    } catch (error) {
      list.prepend(h("li", { className: "job", dataset: { state: "lost" } }, `Could not start a job: ${error.message}`));
    } finally {
      updateButton();
    }
  });
}

// Background jobs: POST /api/jobs, then follow the job's topic over SSE.
//
// Every running job is followed on ONE event stream (LiveTopics, /sse?topic=...):
// a browser opens at most 6 HTTP/1.1 connections per server, so one stream per
// job would cap the page at a few jobs. Starting a job re-opens the stream with
// the new topic list, resuming the other jobs from the positions already seen.

import { LiveTopics } from "./topics.js";
import { errorText, h, jsonHeaders } from "./ui.js";

const MAX_ROWS = 20; // rows kept (and jobs followed: at most 20 of the server's 32 topics)

export function startJobs(config, state) {
  const $ = (id) => document.getElementById(id);
  const list = $("jobs-list");
  const button = $("job-start");
  const jobs = (state.jobs = {});
  const rows = []; // newest first: {item, stop}
  const following = new Map(); // topic → {update, done, lost, reconnecting} of a running job

  const stream = (state.jobsStream = new LiveTopics({
    handlers: {
      progress: (event, topic) => following.get(topic)?.update(event),
      done: (event, topic) => following.get(topic)?.done(event),
    },
    onReset: (topic) => following.get(topic)?.lost(),
    onStatus: (stateName) => {
      if (stateName === "reconnecting") for (const job of following.values()) job.reconnecting();
    },
  }));

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
    const stop = () => {
      if (!following.delete(job.topic)) return;
      // The stream keeps the finished topic until the list changes; with none left, close it.
      if (!following.size) stream.follow([]);
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
    following.set(job.topic, {
      update,
      done: (event) => {
        update(event);
        show(100, "done", "done · 100%");
        stop();
      },
      lost: () => {
        show(record.percent, "lost", "lost in a restart");
        stop();
      },
      reconnecting: () => {
        if (record.state !== "done") view.pct.textContent = "reconnecting…";
      },
    });
    stream.follow([...following.keys()], { [job.topic]: job.last_event_id });
    rows.unshift({ item: view.item, stop });
    while (rows.length > MAX_ROWS) {
      const oldest = rows.pop();
      oldest.stop();
      oldest.item.remove();
    }
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
      button.disabled = false;
    }
  });
}

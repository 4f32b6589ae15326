// The demo page: four widgets, each on its own stream, each reconnecting by itself.
//
// window.trioStreamDemo holds what the widgets saw (ticks with their ids, chat
// messages, the answer, job progress): handy in the console, and what the
// browser tests read.

import { startAnswers } from "./answer.js";
import { startChat } from "./chat.js";
import { startJobs } from "./jobs.js";
import { startTicker } from "./ticker.js";
import { params } from "./ui.js";

const config = JSON.parse(document.getElementById("demo-config").textContent);
const state = (window.trioStreamDemo = { config });

if (config.tokenRequired && !params.get("token")) {
  document.getElementById("token-notice").hidden = false;
}

startTicker(config, state);
startChat(config, state);
startAnswers(config, state);
startJobs(config, state);
state.ready = true;

// AWE pages: refresh the queue and a job page in place (fetch + DOM, no page reload).
// Every value goes into the page as text (textContent), never as HTML.
"use strict";

const REFRESH_MS = 2000;
const LETTERS = ["N", "E", "A", "S", "U"];

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return seconds.toFixed(1) + " s";
  let minutes = Math.floor(Math.round(seconds) / 60);
  const secs = Math.round(seconds) % 60;
  if (minutes < 60) return minutes + " min " + String(secs).padStart(2, "0") + " s";
  const hours = Math.floor(minutes / 60);
  minutes = minutes % 60;
  return hours + " h " + String(minutes).padStart(2, "0") + " min";
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
    pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
}

// As the server's option_text filter: String() for scalars, compact JSON otherwise.
function optionText(value) {
  if (typeof value === "string") return value;
  if (value === null || typeof value !== "object") return String(value);
  return JSON.stringify(value);
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

function stateBadge(state) {
  const span = document.createElement("span");
  span.className = "state state-" + state;
  span.textContent = state;
  return span;
}

function queueRow(job) {
  const tr = document.createElement("tr");
  tr.id = "job-" + job.id;
  tr.dataset.state = job.state;
  const id = cell("", "num");
  id.appendChild(link("/jobs/" + job.id, String(job.id)));
  const dpu = cell("");
  dpu.appendChild(link("/dpus/" + encodeURIComponent(job.dpu), job.dpu));
  const options = Object.entries(job.options).map(([k, v]) => k + "=" + optionText(v)).join(", ");
  const state = cell("", "state-cell");
  state.appendChild(stateBadge(job.state));
  tr.append(
    id, cell(job.user), cell(job.project), dpu, cell(job.sequence), cell(options, "options"),
    state, cell(LETTERS.map((l) => job.counts[l]).join("/"), "num counts"),
    cell(String(job.queued), "num queued"), cell(String(job.running), "num running"),
    cell(when(job.submitted_at)), cell(duration(job.running_seconds), "num"),
  );
  return tr;
}

async function refreshQueue(table) {
  const response = await fetch(table.dataset.api, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const data = await response.json();
  const body = table.tBodies[0];
  body.replaceChildren(...data.jobs.map(queueRow));
  document.getElementById("queue-total").textContent = String(data.total);
  document.getElementById("queue-empty").hidden = data.jobs.length > 0;
  document.getElementById("queue-updated").textContent = "as of " + when(new Date().toISOString());
}

async function refreshJob(container) {
  const response = await fetch(container.dataset.api, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const job = await response.json();
  if (job.state === "FINISHED" || job.state === "CANCELLED") {
    // Final: logs and products are complete now; show them once.
    window.location.reload();
    return;
  }
  document.getElementById("job-state").replaceWith(Object.assign(stateBadge(job.state), { id: "job-state" }));
  const counts = document.getElementById("job-counts");
  counts.replaceChildren();
  for (const state of ["QUEUED", "RUNNING", ...LETTERS]) {
    if (job.counts[state]) counts.append(stateBadge(state), " " + job.counts[state] + " ");
  }
  const rows = job.tasks.map((task) => {
    const tr = document.createElement("tr");
    tr.id = "task-" + task.number;
    const name = cell("");
    name.appendChild(link("#log-" + task.number, task.name));
    const state = cell("");
    state.appendChild(stateBadge(task.state));
    tr.append(cell(String(task.number), "num"), name, state, cell(task.host || ""),
      cell(when(task.started_at)), cell(duration(task.duration), "num"), cell(task.reason || ""));
    return tr;
  });
  document.querySelector("#tasks tbody").replaceChildren(...rows);
}

function dpuTaskRow(task) {
  const tr = document.createElement("tr");
  const job = cell("", "num");
  job.appendChild(link("/jobs/" + task.job_id, String(task.job_id)));
  tr.append(job, cell(task.user), cell(task.sequence), cell(String(task.number), "num"),
    cell(task.name), cell(task.host || ""), cell(when(task.started_at || task.submitted_at)),
    cell(duration(task.seconds), "num"));
  return tr;
}

async function refreshDpu(container) {
  const response = await fetch(container.dataset.api, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const dpu = await response.json();
  for (const kind of ["running", "queued"]) {
    document.querySelector("#" + kind + " tbody").replaceChildren(...dpu[kind].map(dpuTaskRow));
    document.getElementById(kind + "-count").textContent = String(dpu[kind].length);
    document.getElementById(kind + "-none").hidden = dpu[kind].length > 0;
  }
}

// POST with the token typed into the form; show the server's answer (or its refusal) as text.
async function post(form, body) {
  const headers = { Accept: "application/json", "Content-Type": "application/json" };
  const token = form.elements.token.value.trim();
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(form.dataset.api, { method: "POST", headers, body: JSON.stringify(body) });
  return { ok: response.ok, status: response.status, data: await response.json() };
}

function onSubmitJob(form) {
  const result = document.getElementById("submit-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let options;
    try {
      options = JSON.parse(form.elements.options.value || "{}");
    } catch (err) {
      result.textContent = "Options are not JSON: " + err.message;
      return;
    }
    const answer = await post(form, { sequence: form.elements.sequence.value, options });
    result.replaceChildren();
    if (answer.ok) {
      result.append("Submitted job ", link(answer.data.url, String(answer.data.job_id)));
    } else {
      result.textContent = "Refused (" + answer.status + "): " + answer.data.error;
    }
  });
}

function onCancelJob(form) {
  const result = document.getElementById("cancel-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await post(form, {});
    result.textContent = answer.ok
      ? "Cancelled: job " + answer.data.job_id + " is " + answer.data.state
      : "Refused (" + answer.status + "): " + answer.data.error;
  });
}

function every(ms, work) {
  const tick = async () => {
    try {
      if (!document.hidden) await work();
    } finally {
      window.setTimeout(tick, ms);
    }
  };
  window.setTimeout(tick, ms);
}

document.addEventListener("DOMContentLoaded", () => {
  const queue = document.getElementById("queue");
  if (queue) every(REFRESH_MS, () => refreshQueue(queue));
  const submit = document.getElementById("submit");
  if (submit) onSubmitJob(submit);
  const cancel = document.getElementById("cancel");
  if (cancel) onCancelJob(cancel);
  const dpu = document.getElementById("dpu");
  if (dpu) every(REFRESH_MS, () => refreshDpu(dpu));
  const job = document.getElementById("job");
  if (job && job.dataset.state !== "FINISHED" && job.dataset.state !== "CANCELLED") {
    every(REFRESH_MS, () => refreshJob(job));
  }
});

// Tidings console: live log rows over Server-Sent Events, tabs, and the send form's examples.
// No framework and nothing from the network but this console's own routes.
"use strict";

const STATUS_CLASS = {
  Queued: "queued", Submitted: "submitted", Delivered: "delivered", Read: "delivered",
  "Un-Delivered": "failed", Failed: "failed", Expired: "failed", Bounce: "failed",
};

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function badge(status) {
  const span = document.createElement("span");
  span.className = "badge " + (STATUS_CLASS[status] || "other");
  span.textContent = status;
  return span;
}

function rowFor(m, admin) {
  const tr = document.createElement("tr");
  tr.dataset.transid = m.transid;
  tr.dataset.updated = String(m.updated);
  const first = document.createElement("td");
  const a = document.createElement("a");
  a.href = "/console/messages/" + encodeURIComponent(m.transid);
  const time = document.createElement("time");
  time.dateTime = m.createdAt;
  time.textContent = m.time;
  a.appendChild(time);
  first.appendChild(a);
  tr.appendChild(first);
  if (admin) tr.appendChild(cell(m.service));
  tr.appendChild(cell(m.channel));
  tr.appendChild(cell(m.destination));
  tr.appendChild(cell(m.sender));
  const status = document.createElement("td");
  status.appendChild(badge(m.status));
  tr.appendChild(status);
  tr.appendChild(cell(m.code));
  tr.appendChild(cell(m.correlationid));
  return tr;
}

function startLive(table) {
  const state = document.querySelector("[data-live-state]");
  const admin = table.dataset.admin === "1";
  const body = table.tBodies[0];
  const source = new EventSource("/console/events" + window.location.search);
  source.addEventListener("open", () => { if (state) state.textContent = "Live"; });
  source.addEventListener("error", () => { if (state) state.textContent = "Reconnecting…"; });
  source.addEventListener("row", (event) => {
    const m = JSON.parse(event.data);
    const fresh = rowFor(m, admin);
    const old = body.querySelector('tr[data-transid="' + CSS.escape(m.transid) + '"]');
    if (old) {
      old.replaceWith(fresh);
    } else {
      body.insertBefore(fresh, body.firstChild);
      const empty = document.querySelector("[data-empty]");
      if (empty) empty.remove();
    }
    fresh.classList.add("flash");
  });
}

function startTabs(root) {
  const tabs = Array.from(root.querySelectorAll('[role="tab"]'));
  const show = (chosen) => {
    tabs.forEach((tab) => {
      const on = tab === chosen;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
    });
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => show(tab));
    tab.addEventListener("keydown", (ev) => {
      const step = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length];
      next.focus();
      show(next);
    });
  });
  show(tabs[0]);
}

function startSendForm(form) {
  const examples = JSON.parse(form.dataset.examples);
  const routes = JSON.parse(form.dataset.routes);
  const select = form.querySelector("[data-channel]");
  const body = form.querySelector("textarea");
  const path = form.querySelector("[data-path]");
  const pathText = form.querySelector("[data-path-text]");
  const route = form.querySelector("[data-route]");
  select.addEventListener("change", () => {
    const ex = examples[select.value];
    if (!ex) return;
    body.value = ex.body;
    path.value = ex.path;
    pathText.textContent = ex.path;
    route.textContent = "Served by " + routes[select.value] + ".";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.querySelector("table[data-live]");
  if (table && window.EventSource) startLive(table);
  document.querySelectorAll("[data-tabs]").forEach(startTabs);
  const form = document.querySelector("form[data-examples]");
  if (form) startSendForm(form);
});

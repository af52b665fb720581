// The operator console: plain JavaScript, no build step. Every value from the server is put
// into the page as text nodes (never as HTML), so nothing in a message can become markup.
"use strict";

const STATUSES = ["RECEIVED", "VALIDATED", "HELD_CONSENT", "HELD_ROUTING", "ROUTED", "RETRYING",
  "DELIVERED", "ACKNOWLEDGED", "REJECTED", "DEAD"];
const KINDS = ["need-notice", "plan-transfer", "plan-status", "consent"];
const view = document.getElementById("view");
let timer = null;

// ------------------------------------------------------------------ who acts
// The operator's bearer token (from HelseID, or `ipgw token --as operator` in development),
// kept for this tab only. The gateway checks it on every call; what the page shows of it
// (who, which role) is read from the token for display, never trusted.

const ROLE_OF = [["ipgw/ops.content", "privileged"], ["ipgw/ops.act", "operator"], ["ipgw/ops.read", "viewer"]];

function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(decodeURIComponent(escape(atob(part))));
  } catch (e) { return null; }
}

function who() {
  const token = sessionStorage.getItem("token") || "";
  const c = token ? claims(token) : null;
  const scopes = c ? (Array.isArray(c.scope) ? c.scope : String(c.scope || "").split(" ")) : [];
  const role = (ROLE_OF.find(([s]) => scopes.includes(s)) || [null, "none"])[1];
  return { token, operator: c ? c.sub || c.client_id || "" : "", role };
}

function showWho() {
  const w = who();
  document.getElementById("whoami").textContent = w.token ? `${w.operator} (${w.role})` : "";
}

// a token handed over in the address (`/console/#token=...`, as `make demo` prints it) is
// taken and removed from the address at once, so it stays out of the history
if (location.hash.startsWith("#token=")) {
  sessionStorage.setItem("token", decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, "", location.pathname + "#overview");
}

document.getElementById("who").addEventListener("submit", (e) => {
  e.preventDefault();
  const field = document.getElementById("token");
  sessionStorage.setItem("token", field.value.trim());
  field.value = "";
  showWho();
  route();
});

// ------------------------------------------------------------------ helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) {
    node.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c)));
  }
  return node;
}

function table(headers, rows, testid) {
  return el("table", { "data-testid": testid },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))));
}

function statusCell(s) { return el("span", { class: `status-${s}` }, s); }
function when(iso) { return iso ? new Date(iso).toLocaleString("nb-NO") : ""; }
function age(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} t`;
}

async function api(method, path, body) {
  const w = who();
  const headers = {};
  if (w.token) headers["Authorization"] = `Bearer ${w.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const why = (data && (data.title || data.detail)) || r.statusText;
    throw new Error(`${r.status}: ${why}${data && data.detail && data.title ? " — " + data.detail : ""}`);
  }
  return data;
}

function fail(e) { document.getElementById("error").textContent = e.message; }
function clearError() { document.getElementById("error").textContent = ""; }

// ------------------------------------------------------------------ overview

async function overview() {
  const root = el("div", { "data-testid": "overview" });
  view.replaceChildren(root);
  const draw = async () => {
    try {
      const o = await api("GET", "/ops/overview");
      const counts = (m) => STATUSES.filter((s) => m[s]).map((s) => [statusCell(s), m[s]]);
      root.replaceChildren(
        el("p", { class: "muted" }, `Oppdatert / updated ${when(o.at)} — lager ${o.store}, broker ${o.broker}, outbox ${o.outbox_depth}`),
        el("div", { class: "grid" },
          el("section", {}, el("h2", {}, "Nå / Now"), table(["status", "antall"], counts(o.statuses), "statuses-now")),
          el("section", {}, el("h2", {}, "Siste time / Last hour"), table(["status", "endringer"], counts(o.last_hour), "statuses-hour")),
          el("section", {}, el("h2", {}, "Siste døgn / Last day"), table(["status", "endringer"], counts(o.last_day), "statuses-day"))),
        el("section", {}, el("h2", {}, "Steg / Stages"),
          table(["steg", "i kø / queued", "flyttet siste time / moved last hour"],
            o.stages.map((g) => [g.stage, g.queued === null ? "–" : g.queued,
              STATUSES.filter((s) => g.last_hour[s]).map((s) => `${s} ${g.last_hour[s]}`).join(", ")]), "stages")),
        el("section", {}, el("h2", {}, "KE-innbokser / Recipients"),
          table(["mottaker (kommune / HER-id)", "i innboks", "eldste ukvitterte"],
            o.recipients.map((r) => [r.recipient, r.open_inbox, age(r.oldest_unacknowledged_seconds)]), "recipients")),
        el("section", {}, el("h2", {}, "Adaptere / Adapters (siste time)"),
          table(["adapter", "forsøk", "feilet", "feilrate"],
            o.adapters.map((a) => [a.adapter, a.tries_last_hour, a.failed_last_hour,
              a.tries_last_hour ? `${Math.round(100 * a.failed_last_hour / a.tries_last_hour)} %` : ""]), "adapters")));
      clearError();
    } catch (e) { fail(e); }
  };
  await draw();
  timer = setInterval(draw, 2000);
}

// ------------------------------------------------------------------ messages

function filtersFrom(params) {
  const q = new URLSearchParams();
  for (const [k, v] of params) if (v) q.append(k, v);
  return q;
}

async function messages(params) {
  const form = el("form", { class: "filters", "data-testid": "search" },
    el("label", {}, "Meldings-id", el("input", { name: "id", size: 36, value: params.get("id") || "" })),
    el("label", {}, "Avsenders id / sender's id", el("input", { name: "sender_ref", size: 20, value: params.get("sender_ref") || "" })),
    el("label", {}, "Samtale / conversation", el("input", { name: "conversation", size: 36, value: params.get("conversation") || "" })),
    el("label", {}, "Avsender HER-id", el("input", { name: "sender", size: 10, value: params.get("sender") || "" })),
    el("label", {}, "Kommune", el("input", { name: "kommune", size: 4, value: params.get("kommune") || "" })),
    el("label", {}, "Type", el("select", { name: "kind" }, el("option", { value: "" }, "alle"),
      ...KINDS.map((k) => el("option", k === params.get("kind") ? { value: k, selected: "" } : { value: k }, k)))),
    el("label", {}, "Status", el("select", { name: "status" }, el("option", { value: "" }, "alle"),
      ...STATUSES.map((s) => el("option", s === params.get("status") ? { value: s, selected: "" } : { value: s }, s)))),
    el("label", {}, "Fra / since", el("input", { name: "since", type: "datetime-local", value: params.get("since") || "" })),
    el("label", {}, "Til / until", el("input", { name: "until", type: "datetime-local", value: params.get("until") || "" })),
    el("button", { type: "submit" }, "Søk / Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    if (data.get("id")) { location.hash = `#message/${data.get("id").trim()}`; return; }
    location.hash = `#messages?${filtersFrom(data.entries()).toString()}`;
  });
  const results = el("section", { "data-testid": "results" });
  view.replaceChildren(el("section", {}, el("h2", {}, "Søk / Search"), form), results);
  const q = new URLSearchParams();
  for (const k of ["sender_ref", "conversation", "sender", "kommune", "kind", "status"]) if (params.get(k)) q.set(k, params.get(k));
  for (const k of ["since", "until"]) if (params.get(k)) q.set(k, new Date(params.get(k)).toISOString());
  await listPage(results, q, null, params.get("status") === "DEAD");
}

async function listPage(results, q, cursor, bulk) {
  try {
    const page = await api("GET", `/ops/messages?${q.toString()}${cursor ? "&cursor=" + encodeURIComponent(cursor) : ""}`);
    const rows = page.items.map((m) => [
      el("a", { href: `#message/${m.id}` }, m.id), m.kind, statusCell(m.status),
      m.recipient_kommune || "", m.recipient_adapter || "", when(m.updated_at), m.reason || ""]);
    results.replaceChildren(el("h2", {}, `Treff / Results (${page.items.length}${page.next ? "+" : ""})`),
      table(["id", "type", "status", "kommune", "adapter", "endret", "årsak"], rows, "message-list"));
    if (page.next) {
      results.append(el("button", { onclick: () => listPage(results, q, page.next, bulk) }, "Neste side / Next page"));
    }
    if (bulk && page.items.length) {
      results.append(el("button", { "data-testid": "bulk-retry", onclick: () => bulkRetry(q) }, "Prøv alle på nytt / Retry all (DEAD)"));
    }
    clearError();
  } catch (e) { fail(e); }
}

async function bulkRetry(q) {
  if (!confirm("Prøve alle DEAD-meldinger i utvalget på nytt? / Retry every DEAD message in this filter?")) return;
  const filter = { status: ["DEAD"] };
  for (const k of ["kommune", "kind"]) if (q.get(k)) filter[k] = q.get(k);
  for (const k of ["since", "until"]) if (q.get(k)) filter[k] = q.get(k);
  try {
    const r = await api("POST", "/ops/messages/retry", { filter, max: 500 });
    alert(`${r.results.filter((x) => !x.error).length} sendt på nytt / retried`);
    route();
  } catch (e) { fail(e); }
}

// ------------------------------------------------------------------ one message

async function message(id) {
  try {
    const m = await api("GET", `/messages/${encodeURIComponent(id)}`);
    const person = await api("GET", `/messages/${encodeURIComponent(id)}/person`).catch(() => null);
    const receipt = await fetch(`/receipts/${encodeURIComponent(id)}`).then((r) => (r.ok ? r.json() : null));
    const actions = el("div", { "data-testid": "actions" });
    if (m.status === "DEAD") actions.append(el("button", { "data-testid": "retry", onclick: () => act(id, "retry") }, "Prøv på nytt / Retry"));
    if (m.status === "HELD_CONSENT") actions.append(el("button", { "data-testid": "release", onclick: () => act(id, "release") }, "Frigi / Release"));
    if (m.status === "HELD_ROUTING") {
      const kommune = el("input", { "data-testid": "route-kommune", size: 4, pattern: "[0-9]{4}", placeholder: "kommune" });
      actions.append(kommune, el("button", { "data-testid": "route", onclick: () => routeTo(id, kommune.value) }, "Send til kommune / Route"));
    }
    if (["DEAD", "HELD_CONSENT", "HELD_ROUTING"].includes(m.status)) actions.append(el("button", { "data-testid": "discard", onclick: () => discard(id) }, "Forkast / Discard"));
    const content = el("div", { "data-testid": "content" },
      el("button", { "data-testid": "show-content", onclick: () => showContent(id, content) }, "Vis innhold / Show content"));
    view.replaceChildren(
      el("section", { "data-testid": "message" },
        el("h2", {}, `Melding / Message ${m.id}`),
        table(["", ""], [
          ["status", statusCell(m.status)], ["type", m.kind],
          ["mottaker / recipient", `${m.recipient_kommune || ""} ${m.recipient_her_id ? "HER-id " + m.recipient_her_id : ""}`],
          ["person", person && person.born ? `født / born ${person.born}` : "—"],
          ["årsak / reason", m.reason || ""], ["mottatt / received", when(m.received_at)],
          ["forsøk / attempts", `${m.attempts} (feil på rad ${m.failures}, sendt på nytt ${m.resends})`],
          ["neste forsøk / next try", when(m.next_attempt_at)],
          ["fra / parent", m.parent_id ? el("a", { href: `#message/${m.parent_id}` }, m.parent_id) : ""],
          ["samtale / conversation", el("a", { href: `#messages?conversation=${m.parent_id || m.id}`, "data-testid": "conversation" }, "alle meldinger / every message")],
        ], "facts"),
        actions),
      el("section", {}, el("h2", {}, "Tidslinje / Timeline"),
        table(["tid", "steg", "status", "detalj", "hvem"],
          m.events.map((e) => [when(e.at), e.stage, e.status ? statusCell(e.status) : "", e.detail || "", e.actor]), "timeline")),
      el("section", {}, el("h2", {}, "Leveringsforsøk / Delivery attempts"),
        table(["tid", "adapter", "utfall", "årsak", "kode", "detalj", "ms"],
          m.deliveries.map((d) => [when(d.at), d.adapter, d.outcome, d.cause || "", d.code || "", d.detail || "", d.duration_ms]), "deliveries")),
      el("section", {}, el("h2", {}, "Kvittering / AppRec"),
        receipt ? table(["status", "feil / errors"], [[receipt.status.DN || receipt.status.V,
          (receipt.error || []).map((x) => `${x.V} ${x.OT || x.DN}`).join("; ")]], "receipt") : el("p", { class: "muted" }, "ingen ennå / none yet")),
      el("section", {}, el("h2", {}, "Parter og statusmeldinger / Parties"),
        table(["id", "type", "HER-id", "status", "årsak"],
          m.parties.map((p) => [el("a", { href: `#message/${p.id}` }, p.id), p.kind, p.recipient_her_id, statusCell(p.status), p.reason || ""]), "parties")),
      el("section", {}, el("h2", {}, "Innhold / Content"), content));
    clearError();
  } catch (e) { fail(e); }
}

async function act(id, action) {
  if (!confirm(`${action} ${id}?`)) return;
  try { await api("POST", `/messages/${encodeURIComponent(id)}/${action}`); await message(id); } catch (e) { fail(e); }
}

async function routeTo(id, kommune) {
  if (!/^[0-9]{4}$/.test(kommune)) { fail(new Error("kommunenummer: 4 siffer / 4 digits")); return; }
  if (!confirm(`Send ${id} til kommune ${kommune}?`)) return;
  try { await api("POST", `/messages/${encodeURIComponent(id)}/route`, { kommune }); await message(id); } catch (e) { fail(e); }
}

async function discard(id) {
  const reason = prompt("Hvorfor forkastes meldingen? / Why discard?");
  if (!reason) return;
  if (!confirm(`Forkast / discard ${id}?`)) return;
  try { await api("POST", `/messages/${encodeURIComponent(id)}/discard`, { reason }); await message(id); } catch (e) { fail(e); }
}

async function showContent(id, box) {
  const reason = prompt("Hvorfor trenger du innholdet? (loggføres) / Why do you need the content? (audited)");
  if (!reason) return;
  try {
    const c = await api("POST", `/messages/${encodeURIComponent(id)}/content`, { reason });
    box.replaceChildren(el("pre", { "data-testid": "content-body" }, JSON.stringify(c.content, null, 2)));
    clearError();
  } catch (e) { fail(e); }
}

// ------------------------------------------------------------------ by person, audit

function person() {
  const results = el("section", { "data-testid": "person-results" });
  const form = el("form", { class: "filters", "data-testid": "person-search" },
    el("label", {}, "Fødselsnummer / person id", el("input", { name: "person_id", required: "", pattern: "[0-9]{11}", autocomplete: "off" })),
    el("label", {}, "Begrunnelse / reason (loggføres)", el("input", { name: "reason", required: "", minlength: 3, size: 40 })),
    el("button", { type: "submit" }, "Søk / Search"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    try {
      // the id goes in the body, never the URL: URLs reach logs and history
      const page = await api("POST", "/ops/messages/by-person", { person_id: data.get("person_id"), reason: data.get("reason") });
      form.reset();
      results.replaceChildren(table(["id", "type", "status", "kommune", "endret"],
        page.items.map((m) => [el("a", { href: `#message/${m.id}` }, m.id), m.kind, statusCell(m.status), m.recipient_kommune || "", when(m.updated_at)]), "person-list"));
      clearError();
    } catch (err) { fail(err); }
  });
  view.replaceChildren(el("section", {}, el("h2", {}, "Søk på person (loggføres) / By person (audited)"), form), results);
}

async function audit() {
  try {
    const rows = await api("GET", "/ops/audit?limit=200");
    view.replaceChildren(el("section", {}, el("h2", {}, "Revisjonslogg / Audit log"),
      table(["tid", "hvem", "hva", "mål", "begrunnelse"], rows.map((a) => [when(a.at), a.actor, a.action, a.target || "", a.reason || ""]), "audit")));
    clearError();
  } catch (e) { fail(e); }
}

// ------------------------------------------------------------------ routing

function route() {
  if (timer) { clearInterval(timer); timer = null; }
  const hash = location.hash.slice(1) || "overview";
  const [path, query] = hash.split("?");
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", path.startsWith(a.dataset.nav));
  if (path.startsWith("message/")) return message(decodeURIComponent(path.slice(8)));
  if (path === "messages") return messages(new URLSearchParams(query || ""));
  if (path === "person") return person();
  if (path === "audit") return audit();
  return overview();
}

window.addEventListener("hashchange", route);
showWho();
route();

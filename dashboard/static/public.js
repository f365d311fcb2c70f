// The public page of one case: residents follow it and rate the result (1-5) once verified.
const token = decodeURIComponent(location.pathname.split("/").pop());
const api = `/api/v1/public/tickets/${encodeURIComponent(token)}`;
const $ = (id) => document.getElementById(id);
const STATES = {
  registered: "已登记 Registered", dispatched: "已派遣 Dispatched", accepted: "已接单 Accepted",
  handling: "处置中 On site", handled: "已处置 Handled", verified: "已核查 Verified",
  evaluated: "已评价 Rated", closed: "已结案 Closed", void: "已作废 Void",
};

function show(c) {
  $("case").hidden = false;
  $("event-name").textContent = `${c.event_type} ${c.event_name}`;
  $("state").textContent = STATES[c.state] || c.state;
  $("state").dataset.state = c.state;
  $("opened").textContent = new Date(c.opened_at).toLocaleString();
  $("closed-row").hidden = !c.closed_at;
  if (c.closed_at) $("closed").textContent = new Date(c.closed_at).toLocaleString();
  $("rate").hidden = !c.can_rate;
  $("thanks").hidden = c.satisfaction == null;
  $("score").textContent = c.satisfaction ?? "";
}

async function load() {
  const r = await fetch(api);
  if (!r.ok) {
    $("error").hidden = false;
    $("error").textContent = r.status === 404 ? "没有这个案件 No such case" : `HTTP ${r.status}`;
    return;
  }
  show(await r.json());
}

document.querySelector(".stars").addEventListener("click", async (e) => {
  const score = Number(e.target.dataset.score);
  if (!score) return;
  const r = await fetch(`${api}/rating`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ satisfaction: score, comment: $("comment").value }),
  });
  const body = await r.json();
  if (!r.ok) {
    $("error").hidden = false;
    $("error").textContent = body.detail || `HTTP ${r.status}`;
    return;
  }
  show(body);
});

load();

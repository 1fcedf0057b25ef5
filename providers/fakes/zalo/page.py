"""The fake Zalo's chat page (``GET /``): a citizen's view of the OA, for demos and browsers.

Plain HTML with a little inline JavaScript and no external assets. It talks only to the
fake's control API (``/_fake/users``, ``/_fake/users/{id}/{action}``, ``/_fake/thread``)
and polls the thread every second. It shows what Zalo shows the citizen: a tapped
button's title (its payload only in a tooltip), ZNS messages as cards, Zalo's system
line when the OA may not write to them, names rather than user ids, and times in the
fake's time zone. Elements carry ``id``/``data-testid`` attributes that browser tests
rely on: ``user-select``, ``new-name``, ``new-phone``, ``create-user``, ``follow``,
``unfollow``, ``chat-now``, ``chat-title``, ``thread``, ``message`` (each item, with
``data-from`` = ``oa``/``user``/``zns``/``system``), ``oa-button`` (with
``data-payload``), ``zns-card``, ``zns-row``, ``zns-button``, ``not-following``,
``share-phone``, ``text-input``, ``send``, ``status``.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from providers.fakes.page import document, escape

TITLE = "Zalo OA giả lập"


def render_page(time_zone: ZoneInfo) -> str:
    """The chat page, showing times in ``time_zone``."""
    body = _BODY.replace("{TIME_ZONE}", escape(time_zone.key))
    return document(TITLE, body, style=_STYLE)


_STYLE = """
body{background:#eef1f5}
main{max-width:44rem}
fieldset{border:1px solid #ccd;border-radius:.4rem;margin-bottom:.8rem;background:#fff}
#thread{background:#fff;border-radius:.4rem;min-height:18rem;max-height:60vh;overflow:auto;
padding:.6rem}
.msg{margin:.3rem 0;padding:.45rem .7rem;border-radius:.8rem;max-width:80%;
white-space:pre-wrap}
.msg[data-from=oa]{background:#e5efff}
.msg[data-from=zns]{background:#fff4d6}
.msg[data-from=user]{background:#d7f5dd;margin-left:auto}
.msg[data-from=user][data-payload]{cursor:help}
.msg[data-from=system]{background:none;color:#667;font-size:.8rem;text-align:center;
margin:.4rem auto;max-width:90%}
.msg small{display:block;color:#667;font-size:.75rem}
.zns-head{font-size:.7rem;color:#8a6d1d;text-transform:uppercase;letter-spacing:.04em}
.zns-title{font-weight:600;margin:.15rem 0 .35rem}
.zns-row{display:flex;gap:.5rem;border-top:1px solid #f0e2b6;padding:.2rem 0}
.zns-row dt{color:#667;min-width:8rem}.zns-row dd{margin:0;font-weight:500}
.zns-button{display:block;margin:.3rem 0 0;padding:.3rem;border:1px solid #c9a227;
border-radius:.4rem;text-align:center;color:#8a6d1d}
#chat-title{font-weight:600;margin:.2rem 0 .4rem}
.oa-button{display:block;margin:.3rem 0 0;width:100%;padding:.3rem;border:1px solid #0068ff;
border-radius:.4rem;background:#fff;color:#0068ff;cursor:pointer}
#composer{display:flex;gap:.4rem;margin-top:.6rem}
#text-input{flex:1;padding:.45rem}
#status{color:#667;min-height:1.2rem}
"""

_BODY = """<header><strong>Zalo OA giả lập</strong> — người dân trò chuyện với Official Account
</header>
<main data-time-zone="{TIME_ZONE}">
<fieldset><legend>Người dùng</legend>
<select id="user-select" data-testid="user-select"></select>
<button id="follow" data-testid="follow">Quan tâm</button>
<button id="unfollow" data-testid="unfollow">Bỏ quan tâm</button>
<button id="chat-now" data-testid="chat-now">Mở cửa sổ trò chuyện</button>
<div style="margin-top:.5rem">
<input id="new-name" data-testid="new-name" placeholder="Họ tên">
<input id="new-phone" data-testid="new-phone" placeholder="Số điện thoại (+849…)">
<button id="create-user" data-testid="create-user">Tạo người dùng</button>
</div></fieldset>
<div id="chat-title" data-testid="chat-title"></div>
<div id="thread" data-testid="thread"></div>
<button id="share-phone" data-testid="share-phone" hidden>Chia sẻ số điện thoại</button>
<div id="composer">
<input id="text-input" data-testid="text-input" placeholder="Nhập tin nhắn…">
<button id="send" data-testid="send">Gửi</button></div>
<p id="status" data-testid="status"></p>
</main>
<script>
const $ = (id) => document.getElementById(id);
const TIME_ZONE = document.querySelector("main").dataset.timeZone;
let current = localStorage.getItem("fake-zalo-user") || "";
let lastRendered = "";

function say(text) { $("status").textContent = text; }

async function call(method, url, body) {
  const response = await fetch(url, {method, headers: {"Content-Type": "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
  return data;
}

async function loadUsers() {
  const users = await call("GET", "/_fake/users");
  const select = $("user-select");
  select.innerHTML = "";
  for (const user of users) {
    const option = document.createElement("option");
    option.value = user.user_id;
    option.textContent = user.name + (user.phone_e164 ? " · " + user.phone_e164 : "") +
      (user.follows ? " · đang quan tâm" : "");
    select.appendChild(option);
  }
  // A user remembered from an earlier run of the fake may be gone: fall back, or to none.
  if (!users.some((u) => u.user_id === current)) {
    current = users.length ? users[0].user_id : "";
    lastRendered = "";
    if (!current) $("thread").innerHTML = "";
  }
  select.value = current;
  const me = users.find((u) => u.user_id === current);
  $("chat-title").textContent = me ? "Bạn đang trò chuyện với tư cách " + me.name : "";
}

async function act(action, body) {
  if (!current) { say("Hãy tạo hoặc chọn một người dùng."); return; }
  try {
    const result = await call("POST", "/_fake/users/" + current + "/" + action, body || {});
    say("Đã gửi tới gateway: HTTP " + result.status);
  } catch (error) { say("Lỗi: " + error.message); }
  await reload();
}

async function reload() {
  try { await loadUsers(); await refresh(); } catch (error) { say("Lỗi: " + error.message); }
}

function element(tag, className, text, testid) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (testid) node.dataset.testid = testid;
  return node;
}

// A ZNS message as the citizen's Zalo shows it: the template's title, labelled rows, buttons.
function znsCard(div, card) {
  const box = element("div", "zns-card", undefined, "zns-card");
  box.appendChild(element("div", "zns-head", "Thông báo ZNS"));
  box.appendChild(element("div", "zns-title", card.title));
  const rows = element("dl");
  for (const row of card.rows) {
    const line = element("div", "zns-row", undefined, "zns-row");
    line.appendChild(element("dt", "", row.label));
    line.appendChild(element("dd", "", row.value));
    rows.appendChild(line);
  }
  box.appendChild(rows);
  for (const button of card.buttons) {
    box.appendChild(element("span", "zns-button", button.title, "zns-button"));
  }
  div.appendChild(box);
}

function bubble(item) {
  const div = element("div", "msg", undefined, "message");
  div.dataset.from = item.from;
  if (item.card) znsCard(div, item.card);
  else div.appendChild(document.createTextNode(item.text || ""));
  // A tapped button shows its title, as in Zalo; the payload that went to the OA is a tooltip.
  if (item.payload) {
    div.dataset.payload = item.payload;
    div.title = "payload: " + item.payload;
  }
  if (item.from === "user" && item.event === "user_send_text" && item.following === false) {
    div.appendChild(element("small", "", "chưa quan tâm OA", "not-following"));
  }
  for (const button of item.buttons || []) {
    const b = element("button", "oa-button", button.title, "oa-button");
    b.dataset.payload = button.payload;
    b.onclick = () => act("click", {payload: button.payload, title: button.title});
    div.appendChild(b);
  }
  const time = element("small", "", new Date(item.at * 1000).toLocaleTimeString("vi-VN",
    {timeZone: TIME_ZONE}));
  time.title = TIME_ZONE;
  div.appendChild(time);
  return div;
}

async function refresh() {
  if (!current) return;
  const thread = await call("GET", "/_fake/thread?user_id=" + encodeURIComponent(current));
  const rendered = JSON.stringify(thread);
  if (rendered === lastRendered) return;
  lastRendered = rendered;
  const box = $("thread");
  box.innerHTML = "";
  let asked = false;
  for (const item of thread) {
    box.appendChild(bubble(item));
    if (item.from === "oa" && item.request_user_info) asked = true;
    if (item.from === "user" && item.event === "user_submit_info") asked = false;
  }
  $("share-phone").hidden = !asked;
  box.scrollTop = box.scrollHeight;
}

$("user-select").onchange = (e) => {
  current = e.target.value; localStorage.setItem("fake-zalo-user", current);
  lastRendered = ""; reload();
};
$("create-user").onclick = async () => {
  try {
    const user = await call("POST", "/_fake/users",
      {name: $("new-name").value, phone: $("new-phone").value || null});
    current = user.user_id; localStorage.setItem("fake-zalo-user", current);
    say("Đã tạo người dùng " + user.name);
  } catch (error) { say("Lỗi: " + error.message); }
  lastRendered = ""; await reload();
};
$("follow").onclick = () => act("follow");
$("unfollow").onclick = () => act("unfollow");
$("chat-now").onclick = () => act("chat_now");
$("share-phone").onclick = () => act("share");
$("send").onclick = async () => {
  const text = $("text-input").value.trim();
  if (!text) return;
  $("text-input").value = "";
  await act("text", {text});
};
// Enter while an input method (Vietnamese Telex, say) is composing only ends the word.
$("text-input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.isComposing) $("send").click();
});

reload();
setInterval(() => refresh().catch((error) => say("Lỗi: " + error.message)), 1000);
</script>"""

/**
 * The admin page of the dappmanager demo (`cargo run --release --example dappmanager`): live
 * notifications, package operations with progress, chain status, installed packages and an
 * event log, all through the generated, typed bridge client.
 *
 * Compiled by `npx tsc -p ui/tsconfig.json` into `examples/dappmanager/assets/`, which the
 * demo embeds (a test keeps the compiled files fresh).
 */
import { connect, } from "./generated/client.js";
/** The page's settings, from the URL fragment: `#token=…&history=…`. */
const fragment = new URLSearchParams(location.hash.slice(1));
/**
 * How far back a fresh page (no resume point in this tab) starts: the server replays the last
 * this many stored events that cross the bridge (`to_ui`), then live ones. 500 by default:
 * enough for the recent notifications and package operations, little enough to load at once
 * (the server caps it, 1,000 by default); `#…&history=0` starts from live events.
 */
const HISTORY = /^\d{1,9}$/.test(fragment.get("history") ?? "") ? Number(fragment.get("history")) : 500;
const demo = { client: null, received: [], states: [], closeCodes: [], opens: 0, history: HISTORY };
window.eventbusDemo = demo;
function byId(id) {
    const element = document.getElementById(id);
    if (element === null) {
        throw new Error(`#${id} is missing from the page`);
    }
    return element;
}
function element(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className !== "") {
        node.className = className;
    }
    node.append(...children);
    return node;
}
function clock(time) {
    const date = new Date(time);
    return Number.isNaN(date.getTime()) ? time : date.toLocaleTimeString();
}
function shortSequence(sequence) {
    return sequence === null ? "–" : sequence.replace(/^0+(?=\d)/, "");
}
// --- notifications -------------------------------------------------------------------------
const notifications = new Map();
function showNotification(n, info) {
    const item = element("li", "", element("div", "title", n.title), element("div", "body", n.body), element("div", "meta", `${new Date(n.timestamp).toLocaleTimeString()} · seq ${shortSequence(info.sequence)}`));
    item.dataset["type"] = n.type;
    item.dataset["id"] = n.id;
    // A notification with the same id replaces the previous one (the manifest says so).
    notifications.get(n.id)?.remove();
    notifications.set(n.id, item);
    byId("notifications").prepend(item);
    byId("notification-count").textContent = String(notifications.size);
}
// --- package operations --------------------------------------------------------------------
const operations = new Map();
function showOperation(e) {
    const key = `${e.operation}:${e.dnpName}`;
    const percent = e.status === "completed" ? 100 : Math.round((e.progress ?? 0) * 100);
    const fill = element("div", "");
    fill.style.width = `${percent}%`;
    const item = element("li", "", element("div", "", element("strong", "", e.dnpName), ` ${e.operation} ${e.version} · ${e.status} · ${percent}%`), element("div", "bar", fill));
    if (e.error !== undefined) {
        item.append(element("div", "error-text", e.error));
    }
    item.dataset["status"] = e.status;
    const previous = operations.get(key);
    if (previous) {
        previous.replaceWith(item);
    }
    else {
        byId("operations").prepend(item);
    }
    operations.set(key, item);
    // Keep the last few.
    const list = byId("operations");
    while (list.children.length > 8) {
        const last = list.lastElementChild;
        if (last === null)
            break;
        for (const [k, v] of operations)
            if (v === last)
                operations.delete(k);
        last.remove();
    }
}
// --- chains --------------------------------------------------------------------------------
const chains = new Map();
function showChain(c) {
    // 64-bit integers arrive as decimal strings: BigInt keeps them exact.
    const height = BigInt(c.blockHeight).toLocaleString();
    const state = c.syncing ? `syncing ${(c.progress * 100).toFixed(2)}%` : "synced";
    const fill = element("div", "");
    fill.style.width = `${Math.round(c.progress * 100)}%`;
    const card = element("div", "chain", element("div", "name", c.network), element("div", "meta", `${state} · ${c.peers} peers · block ${height}`), element("div", "bar", fill));
    card.dataset["network"] = c.network;
    const previous = chains.get(c.network);
    if (previous) {
        previous.replaceWith(card);
    }
    else {
        byId("chains").append(card);
    }
    chains.set(c.network, card);
}
// --- packages ------------------------------------------------------------------------------
let refreshPending = false;
function showPackages(packages) {
    const list = byId("packages");
    list.replaceChildren(...packages.map((p) => {
        const item = element("li", "", `${p.dnpName} ${p.version}`);
        if (p.isCore)
            item.append(element("span", "core", "core"));
        return item;
    }));
    byId("package-count").textContent = String(packages.length);
    if (refreshPending) {
        refreshPending = false;
        byId("refresh-result").textContent = `Refreshed: ${packages.length} packages at ${new Date().toLocaleTimeString()}`;
    }
}
// --- event log -----------------------------------------------------------------------------
function matches(row, filter) {
    return filter === "" || (row.dataset["text"] ?? "").includes(filter.toLowerCase());
}
function logEvent(event) {
    const payload = event.payload === undefined ? "" : JSON.stringify(event.payload);
    const row = element("tr", "", element("td", "", clock(event.info.time)), element("td", "", event.name), element("td", "", shortSequence(event.info.sequence)), element("td", "payload", payload.length > 220 ? `${payload.slice(0, 220)}…` : payload));
    row.dataset["text"] = `${event.name} ${payload}`.toLowerCase();
    row.dataset["event"] = event.name;
    const filter = byId("filter").value;
    row.hidden = !matches(row, filter);
    const log = byId("log");
    log.prepend(row);
    while (log.children.length > 300) {
        log.lastElementChild?.remove();
    }
    updateLogCount();
}
function updateLogCount() {
    const rows = Array.from(byId("log").children);
    const shown = rows.filter((r) => !r.hidden).length;
    byId("log-count").textContent = `${shown} of ${rows.length} shown`;
}
function applyFilter() {
    const filter = byId("filter").value;
    for (const row of Array.from(byId("log").children)) {
        row.hidden = !matches(row, filter);
    }
    updateLogCount();
}
// --- wiring --------------------------------------------------------------------------------
/** Where the resume point survives a reload of the page (per tab, per server). */
const RESUME_KEY = `eventbus.lastSequence@${location.host}`;
function savedResumePoint() {
    try {
        return sessionStorage.getItem(RESUME_KEY);
    }
    catch {
        return null; // storage disabled: start from live events
    }
}
function saveResumePoint(sequence) {
    if (sequence === null)
        return;
    try {
        sessionStorage.setItem(RESUME_KEY, sequence);
    }
    catch {
        // storage full or disabled: a reload starts from live events
    }
}
function showState(state, detail) {
    const pill = byId("state");
    pill.dataset["state"] = state;
    pill.textContent =
        state === "reconnecting" && detail.retryInMs !== null
            ? `reconnecting (attempt ${detail.attempt}, in ${(detail.retryInMs / 1000).toFixed(1)} s)`
            : state;
}
function start(token) {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/events`;
    // After a reload, resume where this tab left off: what happened meanwhile is shown too. A
    // fresh page asks the server for its recent history instead (the client sends `history`
    // only while it has no resume point), so it opens with the recent notifications and
    // operations rather than empty; reconnects then resume from the last event received.
    run(url, token, savedResumePoint());
}
function run(url, token, since) {
    const client = connect(url, {
        token,
        ...(since === null ? { history: HISTORY } : { since }),
        // A click while reconnecting waits in the client's queue: give it time to get through.
        ackTimeoutMs: 30000,
        onError: (error) => console.warn(`eventbus: ${error.code}: ${error.message}`),
    });
    demo.client = client;
    client.onState((state, detail) => {
        demo.states.push(state);
        if (state === "reconnecting" && detail.attempt === 1) {
            demo.closeCodes.push(detail.closeCode);
        }
        if (state === "open") {
            demo.opens += 1;
            saveResumePoint(client.lastSequence);
            // `packages` is not stored, so no resume replays it: ask for the current list on every
            // connection (the first, and after a reconnect, when it may have changed meanwhile).
            client.emit("requestPackages").catch((error) => {
                console.warn(`eventbus: requestPackages: ${error instanceof Error ? error.message : String(error)}`);
            });
        }
        showState(state, detail);
        // While reconnecting a click is queued by the client and sent once connected.
        byId("refresh").disabled = state === "closed";
    });
    // Typed handlers, registered once: reconnects never duplicate them.
    client.on("notification", showNotification);
    client.on("packageInstall", showOperation);
    client.on("packageUpdate", showOperation);
    client.on("packageRemove", showOperation);
    client.on("chainSync", showChain);
    client.on("packages", (p) => showPackages(p.packages));
    client.onAny((event) => {
        demo.received.push({
            name: event.name,
            id: event.info.id,
            sequence: event.info.sequence,
            notification: event.name === "notification" ? event.payload.id : null,
            title: event.name === "notification" ? event.payload.title : null,
            connection: demo.opens,
        });
        logEvent(event);
        byId("sequence").textContent = `seq ${shortSequence(client.lastSequence)}`;
        saveResumePoint(client.lastSequence);
    });
    byId("refresh").addEventListener("click", () => {
        const result = byId("refresh-result");
        refreshPending = true;
        result.textContent = client.state === "open" ? "Requesting…" : "Queued until the connection is back…";
        client.emit("requestPackages").then(() => {
            if (refreshPending)
                result.textContent = "Request accepted; waiting for the list…";
        }, (error) => {
            refreshPending = false;
            result.textContent = `Refused: ${error instanceof Error ? error.message : String(error)}`;
        });
    });
    byId("filter").addEventListener("input", applyFilter);
}
const token = fragment.get("token");
if (token) {
    start(token);
}
else {
    const form = byId("login");
    form.hidden = false;
    form.addEventListener("submit", (event) => {
        event.preventDefault();
        const value = byId("token").value.trim();
        if (value !== "") {
            form.hidden = true;
            history.replaceState(null, "", `#token=${encodeURIComponent(value)}`);
            start(value);
        }
    });
}

// How the Admin UI uses the generated module: everything here must compile under
// tests/ts/tsconfig.json (strict, exactOptionalPropertyTypes, noUncheckedIndexedAccess, ...).
// Checked by `cargo test -p eventbus-codegen --test typescript`.

import {
  EVENTS,
  MANIFEST,
  NotificationTypeValues,
  isChainEvent,
  isEventName,
  isEventPayload,
  isNotificationType,
  isPackageEvent,
  validateEventPayload,
  validatePackageEvent,
  validators,
} from "../../ui/src/generated/events.ts";
import type {
  ChainEvent,
  EventMap,
  EventMeta,
  EventName,
  EventsByCategory,
  FromUiEventName,
  FromUiEvents,
  NotificationEvent,
  NotificationType,
  PackageEvent,
  ToUiEventName,
  ToUiEvents,
} from "../../ui/src/generated/events.ts";
import * as shapes from "../golden/shapes.ts";
import * as keywords from "../golden/keywords.ts";
import * as minimal from "../golden/minimal.ts";

// ---- A typed client over the bridge, as the UI would write it -----------------------------

type Args<T> = [T] extends [void] ? [] : [payload: T];

interface Client {
  emit<K extends FromUiEventName>(name: K, ...payload: Args<FromUiEvents[K]>): void;
  on<K extends ToUiEventName>(name: K, handler: (payload: ToUiEvents[K]) => void): () => void;
}

function makeClient(send: (frame: string) => void): Client {
  const handlers = new Map<string, Set<(payload: unknown) => void>>();
  return {
    emit(name, ...payload) {
      send(JSON.stringify({ type: `${MANIFEST.package}.${name}`, data: payload[0] ?? null }));
    },
    on(name, handler) {
      const set = handlers.get(name) ?? new Set();
      // The guard proves the payload's type before the typed handler sees it.
      const checked = (payload: unknown): void => {
        if (isEventPayload(name, payload)) handler(payload as ToUiEvents[typeof name]);
      };
      set.add(checked);
      handlers.set(name, set);
      return () => set.delete(checked);
    },
  };
}

const sent: string[] = [];
const client = makeClient((frame) => sent.push(frame));
client.emit("requestPackages");
client.emit("requestChainData");
const off = client.on("packageInstall", (p) => {
  const done: boolean = p.status === "completed";
  const pct: number | undefined = p.progress;
  void done;
  void pct;
});
off();
client.on("chainSync", (c: ChainEvent) => {
  // 64-bit integers are decimal strings: compute with BigInt, nothing is lost.
  const next: bigint = BigInt(c.blockHeight) + 1n;
  void next;
});

// ---- Receiving a frame -----------------------------------------------------------------

function receive(frame: string): string | null {
  const parsed: unknown = JSON.parse(frame);
  if (typeof parsed !== "object" || parsed === null) return "not an object";
  const { event, data } = parsed as { event?: unknown; data?: unknown };
  if (!isEventName(event)) return `unknown event ${String(event)}`;
  const problem = validateEventPayload(event, data);
  if (problem !== null) return `${event}: ${problem}`; // e.g. "packageInstall: $.progress: expected an f64 ..."
  if (event === "notification" && validators.notification(data)) {
    const n: NotificationEvent = data;
    const t: NotificationType = n.type;
    const when = new Date(n.timestamp);
    for (const a of n.actions ?? []) void a.url?.toUpperCase();
    void t;
    void when;
  }
  return null;
}
void receive('{"event":"packageInstall","data":{}}');

const x: unknown = JSON.parse("{}");
if (isPackageEvent(x)) {
  const name: string = x.dnpName;
  const err: string | undefined = x.error;
  void name;
  void err;
}
if (isChainEvent(x)) {
  const peers: number = x.peers;
  void peers;
}
const why: string | null = validatePackageEvent(x);
void why;

// ---- Values built on the UI side -------------------------------------------------------------

const install: PackageEvent = {
  dnpName: "bitcoin.dnp.dappnode.eth",
  version: "0.2.10",
  operation: "install",
  status: "progress",
  progress: 0.42,
};
const withoutOptionals: PackageEvent = { dnpName: "a", version: "1", operation: "remove", status: "started" };
const sync: ChainEvent = { network: "mainnet", syncing: true, progress: 0.98, peers: 48, blockHeight: "19876543" };
const payloads: Partial<{ [K in EventName]: EventMap[K] }> = { packageInstall: install, chainSync: sync };
void withoutOptionals;
void payloads;

// Enums: unions plus their values, for exhaustive switches and pickers.
function colour(t: NotificationType): string {
  switch (t) {
    case "info":
      return "blue";
    case "success":
      return "green";
    case "warning":
      return "orange";
    case "error":
      return "red";
  }
}
const colours: string[] = NotificationTypeValues.map(colour);
const first: "info" = NotificationTypeValues[0];
const maybe: unknown = "warning";
if (isNotificationType(maybe)) colour(maybe);
void colours;
void first;

// ---- Metadata ------------------------------------------------------------------------------

const category: "package" = EVENTS.packageInstall.category;
const persisted: true = EVENTS.notification.persist;
const direction: "from_ui" = EVENTS.requestPackages.ui;
const allMeta: { readonly [K in EventName]: EventMeta } = EVENTS;
const packageEvents: EventsByCategory["package"][] = ["packageInstall", "requestPackages"];
const deprecatedNames: EventName[] = (Object.keys(EVENTS) as EventName[]).filter((n) => EVENTS[n].deprecated);
const fingerprint: string = MANIFEST.fingerprint;
void category;
void persisted;
void direction;
void allMeta;
void packageEvents;
void deprecatedNames;
void fingerprint;

// ---- The other golden modules ------------------------------------------------------------------

const everything: shapes.Everything = {
  text: "héllo 😀",
  flag: true,
  tiny: -128,
  small: 32767,
  medium: -1,
  big: "-9223372036854775808",
  utiny: 255,
  usmall: 0,
  umedium: 4294967295,
  ubig: "18446744073709551615",
  single: 1.5,
  double: -0.25,
  at: Date.now(),
  anything: { any: ["json", 1, null] },
  maybeJson: null,
  bigs: [],
  bigMap: { a: "1" },
  nested: { b: ["2", "3"] },
  levels: ["low", "2fa", "high.v2"],
  byName: { x: "mid-level" },
  matrix: [[1, 2], []],
};
const tree: shapes.Tree = { label: "root", children: [{ label: "leaf", children: [] }], parent: { label: "up", children: [] } };
const level: shapes.Level = shapes.LevelValues[1];
const toUi: shapes.ToUiEventName[] = ["everything", "tree"];
const fromUi: shapes.FromUiEventName = "everything";
const none: shapes.EventMap["quiet"] = undefined;
void shapes.validateEverything(everything);
void shapes.isTree(tree);
void level;
void toUi;
void fromUi;
void none;

// Names that are keywords in TypeScript or Rust work as fields and events.
const kw: keywords.Keywords = {
  type: "t",
  default: true,
  fn: 1,
  class: "delete",
  self: -1,
  super: 2,
  crate: 3,
  async: ["a"],
  await: {},
  let: "18446744073709551615",
  yield: null,
  interface: "i",
  function: "f",
  export: "e",
  new: "n",
  static: "s",
};
const deleted: string | undefined = kw.delete;
const kinds: readonly keywords.Kind[] = keywords.KindValues;
const isNew: boolean = keywords.validators.new(null) && keywords.validators.default({});
const m: keywords.Match = { in: "x", where: "y" };
const typeEvent: keywords.EventMap["type"] = kw;
const cls: "class" = keywords.EVENTS.class.name;
const del: keywords.EventMap["delete"] = { delete: "delete" };
const delOk: boolean = keywords.validators.delete(del) && keywords.isEventPayload("delete", del);
void deleted;
void kinds;
void isNew;
void m;
void typeEvent;
void cls;
void delOk;
void keywords.isEventPayload("match", m);

// A manifest whose only event has no payload.
const ping: minimal.EventMap["ping"] = undefined;
const pingOk: boolean = minimal.isEventPayload("ping", null);
void ping;
void pingOk;

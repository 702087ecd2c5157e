/**
 * The typed client of the eventbus WebSocket bridge (protocol: `docs/bridge.md`).
 *
 * ```ts
 * import { connect } from "./client.js";
 *
 * const client = connect("ws://localhost:8080/events", { token });
 * const off = client.on("notification", (n) => show(n.title)); // typed by the manifest
 * client.onState((state) => banner(state));                      // "connecting" | "open" | ...
 * await client.emit("requestPackages");                          // only events the UI may send
 * off();
 * ```
 *
 * Handlers are kept by the client, not by a socket: they are registered once and survive
 * reconnects, which never duplicate them. After a disconnect the client reconnects with
 * exponential backoff and full jitter, and resumes after the last stored event it received,
 * so persisted events emitted meanwhile arrive once each; a first connection may ask for
 * recent history ({@link ConnectOptions.history}). Every incoming payload is checked with the
 * generated guards before a handler sees it.
 *
 * A silently dead server (a crashed host, a dropped NAT entry) is noticed without waiting for
 * TCP: the server sends a heartbeat frame whenever it has sent nothing for its ping interval,
 * and the client reconnects when no frame came within the interval plus the timeout its
 * welcome announced (45 s by default). Emits made while the connection is not open are queued
 * (up to {@link ConnectOptions.queueLimit}) and sent, in order, once it is open again.
 * @module
 */

import {
  EVENTS,
  MANIFEST,
  isEventName,
  validateEventPayload,
  type EventName,
  type FromUiEventName,
  type FromUiEvents,
  type ToUiEventName,
  type ToUiEvents,
} from "__EVENTS_MODULE__";

/** Where the connection stands. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** The CloudEvents attributes of a received event. */
export interface EventInfo {
  /** The event's name (`"notification"`). */
  readonly name: ToUiEventName;
  /** CloudEvents `id`: unique per source. */
  readonly id: string;
  /** CloudEvents `source` (the server). */
  readonly source: string;
  /** CloudEvents `time`: RFC 3339, when the event was emitted. */
  readonly time: string;
  /** The store sequence number of a persisted event (a 20-digit string), else `null`. */
  readonly sequence: string | null;
}

/** An event as {@link Client.onAny} receives it: name and payload typed together. */
export type ReceivedEvent = {
  [K in ToUiEventName]: { readonly name: K; readonly payload: ToUiEvents[K]; readonly info: EventInfo };
}[ToUiEventName];

/** A handler of one event. */
export type Handler<K extends ToUiEventName> = (payload: ToUiEvents[K], info: EventInfo) => void;

/** The arguments of {@link Client.emit} for event `K`: none for an event without payload. */
export type EmitArgs<K extends FromUiEventName> = FromUiEvents[K] extends void ? [] : [payload: FromUiEvents[K]];

/** What a state change says besides the state. */
export interface StateDetail {
  /** Reconnection attempts since the connection was last open. */
  readonly attempt: number;
  /** When reconnecting: the delay before the next attempt, in milliseconds. */
  readonly retryInMs: number | null;
  /** The close code of the connection that ended, if any (4001: bad token, 4008: too slow). */
  readonly closeCode: number | null;
  /** Its close reason. */
  readonly reason: string;
}

/** An error frame from the server, or a problem of the client itself. */
export class BridgeError extends Error {
  /** The error frame's `code` (`invalid_payload`, `rate_limited`, ...) or the client's own:
   * `not_connected`, `queue_full`, `timeout`, `disconnected`, `closed`, `invalid_frame`,
   * `handler_failed`. */
  readonly code: string;
  /** The JSON path of an invalid payload (`$.peers`), else `null`. */
  readonly path: string | null;
  /** The event concerned, if known. */
  readonly event: string | null;
  constructor(code: string, message: string, path: string | null = null, event: string | null = null) {
    super(message);
    this.name = "BridgeError";
    this.code = code;
    this.path = path;
    this.event = event;
  }
}

/** The parts of a WebSocket the client uses (the browser's, or one given in the options). */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { readonly data: unknown }) => void) | null;
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket constructor. */
export type SocketFactory = new (url: string, protocols: string) => SocketLike;

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** The bridge's token. Sent in the first frame, never in the URL. */
  readonly token: string;
  /** Resume after this sequence number (e.g. one saved from {@link Client.lastSequence}). */
  readonly since?: string;
  /** Without a resume point: start with the last this many stored events the server sends
   * to the UI, then live ones (the server caps it, 1,000 by default; `0` or absent: live
   * events only). Sent only while the client has no resume point: once it has one
   * (`since`, the welcome's or a received event's) reconnects resume from it instead. */
  readonly history?: number;
  /** Reconnect after a lost connection (default `true`). */
  readonly reconnect?: boolean;
  /** First reconnection delay cap, in ms (default 500); doubled per attempt. */
  readonly minDelayMs?: number;
  /** Largest reconnection delay cap, in ms (default 30,000). */
  readonly maxDelayMs?: number;
  /** How long {@link Client.emit} waits for the server's answer, in ms (default 10,000),
   * counted from the call: time spent queued while reconnecting is included. */
  readonly ackTimeoutMs?: number;
  /** Emits kept while the connection is not open, sent in order once it is (default 100).
   * Beyond it `emit` rejects with `queue_full`; `0` rejects every emit made while not open
   * with `not_connected`. A queued emit whose ack timeout passes is dropped, never sent. */
  readonly queueLimit?: number;
  /** How long to wait for the server's welcome after opening a socket, in ms (default
   * 20,000), before trying again. */
  readonly connectTimeoutMs?: number;
  /** Reconnect when no frame arrived for this long, in ms. Default: the heartbeat interval
   * plus timeout of the server's welcome (25 s + 20 s by default). `0` turns it off. */
  readonly heartbeatTimeoutMs?: number;
  /** The WebSocket constructor (default: the global `WebSocket`). */
  readonly WebSocket?: SocketFactory;
  /** Errors not tied to an `emit`: invalid frames, handler exceptions, server errors. */
  readonly onError?: (error: BridgeError) => void;
}

/** A connection to the bridge that survives reconnects. */
export interface Client {
  /** Calls `handler` for every `name` event until the returned function is called. */
  on<K extends ToUiEventName>(name: K, handler: Handler<K>): () => void;
  /** Calls `handler` for every event; returns the function that removes it. */
  onAny(handler: (event: ReceivedEvent) => void): () => void;
  /** Sends an event the manifest lets the UI send; resolves once the server accepted it,
   * rejects with a {@link BridgeError} when it refused it. While the connection is not open
   * the emit waits in a bounded queue (see {@link ConnectOptions.queueLimit}); an emit sent
   * on a connection lost before the answer rejects with `disconnected` and is not resent
   * (the server may have accepted it). */
  emit<K extends FromUiEventName>(name: K, ...payload: EmitArgs<K>): Promise<void>;
  /** The connection state now. */
  readonly state: ConnectionState;
  /** Calls `listener` (at once, then) on every state change; returns its remover. */
  onState(listener: (state: ConnectionState, detail: StateDetail) => void): () => void;
  /** The sequence number of the last stored event received (the resume point), or `null`. */
  readonly lastSequence: string | null;
  /** Closes the connection for good. */
  close(): void;
}

/** The global functions the client needs, typed here so it compiles with or without DOM types. */
interface Env {
  readonly WebSocket?: SocketFactory;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  readonly TextEncoder?: new () => { encode(text: string): { readonly length: number } };
  readonly console?: { error(...args: unknown[]): void };
}

const env = globalThis as unknown as Env;
const CONTROL = "eventbus.bridge.";
const NO_RETRY_CODES: readonly number[] = [4001];

type Any = (event: ReceivedEvent) => void;
type StateListener = (state: ConnectionState, detail: StateDetail) => void;

interface Pending {
  readonly resolve: () => void;
  readonly reject: (error: BridgeError) => void;
  readonly timer: unknown;
}

/** An emit waiting for the connection to open. */
interface Queued {
  readonly id: string;
  readonly name: string;
  readonly encoded: string;
  readonly pending: Pending;
}

function isObject(x: unknown): x is { readonly [key: string]: unknown } {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function text(x: unknown): string | null {
  return typeof x === "string" ? x : null;
}

function byteLength(s: string): number {
  return env.TextEncoder ? new env.TextEncoder().encode(s).length : s.length * 3;
}

class BridgeClient implements Client {
  private readonly url: string;
  private readonly options: ConnectOptions;
  private readonly handlers: Map<string, Set<(payload: unknown, info: EventInfo) => void>> = new Map();
  private readonly anyHandlers: Set<Any> = new Set();
  private readonly stateListeners: Set<StateListener> = new Set();
  private readonly pending: Map<string, Pending> = new Map();
  private queued: Queued[] = [];
  /** Fires when the server has been silent too long: before the welcome, or between frames. */
  private watchdog: unknown = null;
  private silenceMs = 0;
  /** The server's rate limit on what this client sends (from the welcome). */
  private burst = Number.POSITIVE_INFINITY;
  private framesPerSecond = Number.POSITIVE_INFINITY;
  private flushTimer: unknown = null;
  private socket: SocketLike | null = null;
  private current: ConnectionState = "connecting";
  private detail: StateDetail = { attempt: 0, retryInMs: null, closeCode: null, reason: "" };
  private resumeFrom: string | null;
  private attempt = 0;
  private timer: unknown = null;
  private stopped = false;
  private maxFrameBytes = Number.POSITIVE_INFINITY;
  private counter = 0;
  private readonly session: string = Math.random().toString(36).slice(2, 10);

  constructor(url: string, options: ConnectOptions) {
    const history = options.history;
    if (history !== undefined && !(Number.isSafeInteger(history) && history >= 0)) {
      throw new RangeError(`history must be a whole number of events (0 or more), not ${String(history)}`);
    }
    this.url = url;
    this.options = options;
    this.resumeFrom = options.since ?? null;
    this.open();
  }

  get state(): ConnectionState {
    return this.current;
  }

  get lastSequence(): string | null {
    return this.resumeFrom;
  }

  on<K extends ToUiEventName>(name: K, handler: Handler<K>): () => void {
    let set = this.handlers.get(name);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(name, set);
    }
    // Each registration is its own entry, removed by its own function.
    const entry = (payload: unknown, info: EventInfo): void => handler(payload as ToUiEvents[K], info);
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  onAny(handler: (event: ReceivedEvent) => void): () => void {
    const entry: Any = (event) => handler(event);
    this.anyHandlers.add(entry);
    return () => {
      this.anyHandlers.delete(entry);
    };
  }

  onState(listener: StateListener): () => void {
    const entry: StateListener = (state, detail) => listener(state, detail);
    this.stateListeners.add(entry);
    this.safely(() => entry(this.current, this.detail));
    return () => {
      this.stateListeners.delete(entry);
    };
  }

  emit<K extends FromUiEventName>(name: K, ...payload: EmitArgs<K>): Promise<void> {
    if (!isEventName(name) || (EVENTS[name].ui !== "from_ui" && EVENTS[name].ui !== "both")) {
      return Promise.reject(new BridgeError("not_allowed", `${String(name)} may not be sent by the UI`, null, name));
    }
    const data: unknown = payload[0];
    const problem = validateEventPayload(name, data);
    if (problem !== null) {
      return Promise.reject(new BridgeError("invalid_payload", problem, problem.split(":")[0] ?? null, name));
    }
    // Queued emits go first: an emit never overtakes an earlier one.
    const socket = this.current === "open" && this.queued.length === 0 ? this.socket : null;
    const limit = this.options.queueLimit ?? 100;
    if (socket === null && (this.stopped || (limit <= 0 && this.current !== "open"))) {
      return Promise.reject(new BridgeError("not_connected", `cannot send ${name}: the connection is ${this.current}`, null, name));
    }
    if (socket === null && this.queued.length >= limit) {
      return Promise.reject(new BridgeError("queue_full", `cannot send ${name}: ${limit} emits already wait for the connection`, null, name));
    }
    this.counter += 1;
    const id = `${this.session}-${this.counter}`;
    const frame: { [key: string]: unknown } = {
      specversion: "1.0",
      id,
      source: "/eventbus/client",
      type: `${MANIFEST.package}.${name}`,
    };
    if (data !== undefined) {
      frame["datacontenttype"] = "application/json";
      frame["data"] = data;
    }
    const encoded = JSON.stringify(frame);
    if (byteLength(encoded) > this.maxFrameBytes) {
      return Promise.reject(new BridgeError("too_large", `the ${name} frame exceeds ${this.maxFrameBytes} bytes`, null, name));
    }
    return new Promise<void>((resolve, reject) => {
      const timeoutMs = this.options.ackTimeoutMs ?? 10_000;
      const timer = env.setTimeout(() => {
        this.pending.delete(id);
        this.queued = this.queued.filter((q) => q.id !== id);
        reject(new BridgeError("timeout", `no answer to ${name} within ${timeoutMs} ms`, null, name));
      }, timeoutMs);
      const pending: Pending = { resolve, reject, timer };
      if (socket === null) {
        this.queued.push({ id, name, encoded, pending });
      } else {
        this.pending.set(id, pending);
        socket.send(encoded);
      }
    });
  }

  close(): void {
    this.stopped = true;
    if (this.timer !== null) {
      env.clearTimeout(this.timer);
      this.timer = null;
    }
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) {
      this.detach(socket);
      socket.close(1000, "closed by the client");
    }
    this.disarm();
    this.stopFlushing();
    this.failPending("closed", "the client was closed");
    this.failQueued("closed", "the client was closed");
    this.setState("closed", { attempt: this.attempt, retryInMs: null, closeCode: 1000, reason: "closed by the client" });
  }

  private open(): void {
    const Socket = this.options.WebSocket ?? env.WebSocket;
    if (Socket === undefined) {
      throw new Error("no WebSocket implementation: pass one as the `WebSocket` option");
    }
    let socket: SocketLike;
    try {
      socket = new Socket(this.url, "cloudevents.json");
    } catch (error) {
      this.report(new BridgeError("disconnected", `cannot open ${this.url}: ${String(error)}`));
      this.scheduleReconnect(null, "");
      return;
    }
    this.socket = socket;
    this.arm(this.options.connectTimeoutMs ?? 20_000, "no welcome from the server");
    socket.onopen = () => {
      const auth: { [key: string]: unknown } = { token: this.options.token };
      if (this.resumeFrom !== null) {
        auth["since"] = this.resumeFrom;
      } else if (this.options.history !== undefined && this.options.history > 0) {
        auth["history"] = this.options.history;
      }
      socket.send(JSON.stringify({
        specversion: "1.0",
        id: `${this.session}-auth-${this.attempt}`,
        source: "/eventbus/client",
        type: `${CONTROL}auth`,
        datacontenttype: "application/json",
        data: auth,
      }));
    };
    socket.onmessage = (message) => {
      if (this.socket === socket) {
        if (this.current === "open" && this.silenceMs > 0) {
          this.arm(this.silenceMs, "no frame from the server");
        }
        this.receive(message.data);
      }
    };
    socket.onerror = () => {
      // The close event follows and says what happened.
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) {
        return;
      }
      this.lost(event.code, event.reason);
    };
  }

  /** The current socket is gone (closed by the server, or given up by the watchdog). */
  private lost(code: number | null, reason: string): void {
    this.socket = null;
    this.disarm();
    this.stopFlushing();
    this.failPending("disconnected", "the connection was lost before the server answered");
    if (this.stopped) {
      return;
    }
    if ((code !== null && NO_RETRY_CODES.includes(code)) || this.options.reconnect === false) {
      this.stopped = true;
      const why = `the connection closed (${code ?? "no close frame"} ${reason})`;
      this.failQueued("closed", why);
      this.report(new BridgeError("closed", why));
      this.setState("closed", { attempt: this.attempt, retryInMs: null, closeCode: code, reason });
      return;
    }
    this.scheduleReconnect(code, reason);
  }

  /** (Re)starts the watchdog: after `ms` without a frame, the socket is given up. */
  private arm(ms: number, why: string): void {
    this.disarm();
    if (ms <= 0) {
      return;
    }
    this.watchdog = env.setTimeout(() => {
      this.watchdog = null;
      const socket = this.socket;
      if (socket === null || this.stopped) {
        return;
      }
      // A dead server's close event may come minutes later, if ever: stop waiting for it.
      this.detach(socket);
      try {
        socket.close(4000, why);
      } catch {
        // already closing
      }
      const reason = `${why} within ${ms} ms`;
      this.report(new BridgeError("disconnected", `${reason}: reconnecting`));
      this.lost(null, reason);
    }, ms);
  }

  private stopFlushing(): void {
    if (this.flushTimer !== null) {
      env.clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
  }

  private disarm(): void {
    if (this.watchdog !== null) {
      env.clearTimeout(this.watchdog);
      this.watchdog = null;
    }
  }

  private detach(socket: SocketLike): void {
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
  }

  private scheduleReconnect(code: number | null, reason: string): void {
    this.attempt += 1;
    const min = this.options.minDelayMs ?? 500;
    const max = this.options.maxDelayMs ?? 30_000;
    // Full jitter: a random delay up to the exponential cap.
    const cap = Math.min(max, min * 2 ** Math.min(this.attempt - 1, 30));
    const delay = Math.round(Math.random() * cap);
    this.setState("reconnecting", { attempt: this.attempt, retryInMs: delay, closeCode: code, reason });
    this.timer = env.setTimeout(() => {
      this.timer = null;
      if (!this.stopped) {
        this.open();
      }
    }, delay);
  }

  private receive(raw: unknown): void {
    if (typeof raw !== "string") {
      return this.report(new BridgeError("invalid_frame", "a binary frame was ignored"));
    }
    let frame: unknown;
    try {
      frame = JSON.parse(raw);
    } catch {
      return this.report(new BridgeError("invalid_frame", "a frame that is not JSON was ignored"));
    }
    if (!isObject(frame) || frame["specversion"] !== "1.0" || typeof frame["type"] !== "string") {
      return this.report(new BridgeError("invalid_frame", "a frame that is not a CloudEvent was ignored"));
    }
    const type = frame["type"];
    const data = frame["data"];
    if (type.startsWith(CONTROL)) {
      return this.control(type.slice(CONTROL.length), data);
    }
    const prefix = `${MANIFEST.package}.`;
    const name = type.startsWith(prefix) ? type.slice(prefix.length) : null;
    if (!isEventName(name) || !isToUi(name)) {
      return this.report(new BridgeError("invalid_frame", `an event of unknown type ${type} was ignored`));
    }
    const problem = validateEventPayload(name, data);
    if (problem !== null) {
      return this.report(new BridgeError("invalid_frame", `a ${name} event with an invalid payload was ignored: ${problem}`, null, name));
    }
    const sequence = text(frame["sequence"]);
    if (sequence !== null) {
      // Zero-padded to 20 digits: string order is numeric order.
      if (this.resumeFrom !== null && sequence.length === this.resumeFrom.length && sequence <= this.resumeFrom) {
        return; // already delivered
      }
      this.resumeFrom = sequence;
    }
    const info: EventInfo = {
      name,
      id: text(frame["id"]) ?? "",
      source: text(frame["source"]) ?? "",
      time: text(frame["time"]) ?? "",
      sequence,
    };
    for (const handler of Array.from(this.handlers.get(name) ?? [])) {
      this.safely(() => handler(data, info));
    }
    const event = { name, payload: data, info } as ReceivedEvent;
    for (const handler of Array.from(this.anyHandlers)) {
      this.safely(() => handler(event));
    }
  }

  private control(kind: string, data: unknown): void {
    const fields = isObject(data) ? data : {};
    if (kind === "welcome") {
      const limits = fields["limits"];
      if (isObject(limits) && typeof limits["maxFrameBytes"] === "number") {
        this.maxFrameBytes = limits["maxFrameBytes"];
      }
      if (isObject(limits) && typeof limits["burst"] === "number" && typeof limits["framesPerSecond"] === "number") {
        this.burst = Math.max(1, limits["burst"]);
        this.framesPerSecond = Math.max(1, limits["framesPerSecond"]);
      }
      const sequence = text(fields["sequence"]);
      if (fields["resumed"] !== true || this.resumeFrom === null) {
        this.resumeFrom = sequence;
      }
      const heartbeat = fields["heartbeat"];
      const announced = isObject(heartbeat) && typeof heartbeat["intervalMs"] === "number" && typeof heartbeat["timeoutMs"] === "number"
        ? heartbeat["intervalMs"] + heartbeat["timeoutMs"]
        : 0;
      this.silenceMs = this.options.heartbeatTimeoutMs ?? announced;
      if (this.silenceMs > 0) {
        this.arm(this.silenceMs, "no frame from the server");
      } else {
        this.disarm();
      }
      this.attempt = 0;
      this.setState("open", { attempt: 0, retryInMs: null, closeCode: null, reason: "" });
      this.flushQueued(this.burst);
    } else if (kind === "ack") {
      const pending = this.takePending(fields["ref"]);
      pending?.resolve();
    } else if (kind === "error") {
      const error = new BridgeError(
        text(fields["code"]) ?? "error",
        text(fields["message"]) ?? "the server refused a frame",
        text(fields["path"]),
        text(fields["event"]),
      );
      const pending = this.takePending(fields["ref"]);
      if (pending) {
        pending.reject(error);
      } else {
        this.report(error);
      }
    }
  }

  private takePending(ref: unknown): Pending | undefined {
    if (typeof ref !== "string") {
      return undefined;
    }
    const pending = this.pending.get(ref);
    if (pending) {
      this.pending.delete(ref);
      env.clearTimeout(pending.timer);
    }
    return pending;
  }

  /** Sends the emits queued while the connection was not open, in order: `budget` at once
   * (the server's burst), then paced at its rate so a long queue is not refused as
   * `rate_limited`. */
  private flushQueued(budget: number): void {
    this.flushTimer = null;
    const socket = this.socket;
    let left = budget;
    while (left > 0 && socket !== null && this.current === "open") {
      const q = this.queued.shift();
      if (q === undefined) {
        return;
      }
      if (byteLength(q.encoded) > this.maxFrameBytes) {
        env.clearTimeout(q.pending.timer);
        q.pending.reject(new BridgeError("too_large", `the ${q.name} frame exceeds ${this.maxFrameBytes} bytes`, null, q.name));
        continue;
      }
      this.pending.set(q.id, q.pending);
      socket.send(q.encoded);
      left -= 1;
    }
    if (this.queued.length > 0 && socket !== null && this.current === "open") {
      // A little slower than the refill, so the server's bucket always has a token.
      const delay = Math.ceil(1100 / this.framesPerSecond);
      this.flushTimer = env.setTimeout(() => this.flushQueued(1), delay);
    }
  }

  private failQueued(code: string, message: string): void {
    const queued = this.queued;
    this.queued = [];
    for (const q of queued) {
      env.clearTimeout(q.pending.timer);
      q.pending.reject(new BridgeError(code, message, null, q.name));
    }
  }

  private failPending(code: string, message: string): void {
    for (const [id, pending] of Array.from(this.pending)) {
      this.pending.delete(id);
      env.clearTimeout(pending.timer);
      pending.reject(new BridgeError(code, message));
    }
  }

  private setState(state: ConnectionState, detail: StateDetail): void {
    this.current = state;
    this.detail = detail;
    for (const listener of Array.from(this.stateListeners)) {
      this.safely(() => listener(state, detail));
    }
  }

  private safely(work: () => void): void {
    try {
      work();
    } catch (error) {
      this.report(new BridgeError("handler_failed", `a handler threw: ${String(error)}`));
    }
  }

  private report(error: BridgeError): void {
    if (this.options.onError) {
      try {
        this.options.onError(error);
      } catch {
        // An error reporter that throws has nobody left to tell.
      }
    } else {
      env.console?.error("eventbus:", error.message);
    }
  }
}

function isToUi(name: EventName): name is ToUiEventName {
  const ui = EVENTS[name].ui as string;
  return ui === "to_ui" || ui === "both";
}

/**
 * Connects to the bridge at `url` (`ws://host/events` or `wss://...`) and keeps connected:
 * the returned client reconnects and resumes by itself until {@link Client.close}.
 */
export function connect(url: string, options: ConnectOptions): Client {
  return new BridgeClient(url, options);
}

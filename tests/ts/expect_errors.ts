// Wrong payloads must not compile. Every `// @ts-expect-error TSxxxx why` line is checked twice
// by `cargo test -p eventbus-codegen --test typescript`: tsc must accept the file as it is
// (so each directive has an error to absorb), and with the directives removed tsc must report
// exactly that error code on exactly the line below each directive, and nothing elsewhere.
// Keep each case on one line.

import { EVENTS, validators } from "../../ui/src/generated/events.ts";
import type {
  ChainEvent,
  EventMap,
  EventName,
  FromUiEventName,
  FromUiEvents,
  NotificationType,
  PackageEvent,
  ToUiEventName,
} from "../../ui/src/generated/events.ts";
import type * as shapes from "../golden/shapes.ts";
import type * as keywords from "../golden/keywords.ts";

type Args<T> = [T] extends [void] ? [] : [payload: T];
declare function emit<K extends FromUiEventName>(name: K, ...payload: Args<FromUiEvents[K]>): void;
declare function send<K extends EventName>(name: K, payload: EventMap[K]): void;

// @ts-expect-error TS2322 wrong field type: progress is a number
export const wrongType: PackageEvent = { dnpName: "a", version: "1", operation: "install", status: "progress", progress: "half" };

// @ts-expect-error TS2741 missing required field: status
export const missingField: PackageEvent = { dnpName: "a", version: "1", operation: "install" };

// @ts-expect-error TS2820 unknown enum value (tsc suggests "install")
export const unknownEnum: PackageEvent = { dnpName: "a", version: "1", operation: "reinstall", status: "started" };

// @ts-expect-error TS2322 an int64 (u64) field is a decimal string, not a number
export const int64AsNumber: ChainEvent = { network: "mainnet", syncing: false, progress: 1, peers: 3, blockHeight: 19876543 };

// @ts-expect-error TS2322 an int64 field does not take a bigint either: convert with String(n)
export const int64AsBigint: shapes.Batched = { id: 18446744073709551615n };

// @ts-expect-error TS2322 an optional field is left out, never null (Rust rejects null)
export const nullOptional: PackageEvent = { dnpName: "a", version: "1", operation: "install", status: "error", error: null };

// @ts-expect-error TS2322 an integer field takes no string
export const intAsString: ChainEvent = { network: "mainnet", syncing: false, progress: 1, peers: "3", blockHeight: "1" };

// @ts-expect-error TS2353 unknown field in an object literal
export const extraField: shapes.Batched = { id: "1", idd: "2" };

// @ts-expect-error TS2322 a list of enum values holds only enum values
export const badLevels: shapes.Everything["levels"] = ["low", "medium"];

// @ts-expect-error TS2322 a map holds only its value type
export const badMap: shapes.Everything["bigMap"] = { a: 1 };

// @ts-expect-error TS2820 unknown event name (tsc suggests "packageInstall")
export const unknownEvent: EventName = "packageInstal";

// @ts-expect-error TS2322 a to_ui-only event is not in the from_ui map
export const toUiOnly: FromUiEventName = "packageInstall";

// @ts-expect-error TS2322 a from_ui-only event is not in the to_ui map
export const fromUiOnly: ToUiEventName = "requestPackages";

// @ts-expect-error TS2345 emitting a to_ui-only event from the browser
emit("chainData");

// @ts-expect-error TS2554 an event without payload takes no payload
emit("requestPackages", {});

// @ts-expect-error TS2353 the payload of another event
send("chainSync", { dnpName: "a", version: "1", operation: "install", status: "started" });

// @ts-expect-error TS2322 a severity outside the enum
export const severity: NotificationType = "fatal";

// @ts-expect-error TS2540 the metadata is read-only
EVENTS.packageInstall.persist = false;

// @ts-expect-error TS2322 the metadata keeps literal types
export const wrongCategory: "chain" = EVENTS.packageInstall.category;

// @ts-expect-error TS2339 a guard narrows to its own type only
export const narrowed = (x: unknown): string => (validators.chainSync(x) ? x.dnpName : "");

// @ts-expect-error TS2322 keyword-named fields are typed like any other
export const keywordField: keywords.Keywords["delete"] = 5;

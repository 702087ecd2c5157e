// The generated bridge client (ui/src/generated/client.ts) as the Admin UI uses it, checked by
// `tsc --strict` with the settings of tsconfig.json (cargo test -p eventbus-codegen --test
// typescript). Each `@ts-expect-error` must be an error, or tsc reports the unused directive.

import { connect, BridgeError, type Client, type ConnectionState, type ReceivedEvent } from "../../ui/src/generated/client.ts";
import type { ChainEvent, NotificationEvent } from "../../ui/src/generated/events.ts";

export function wire(client: Client): (() => void)[] {
  const offs: (() => void)[] = [];
  // Handlers are typed by the manifest's `to_ui` events.
  offs.push(client.on("notification", (n: NotificationEvent, info) => {
    const title: string = n.title;
    const sequence: string | null = info.sequence;
    void title;
    void sequence;
  }));
  offs.push(client.on("chainSync", (c: ChainEvent) => {
    const height: bigint = BigInt(c.blockHeight); // u64 arrives as a decimal string
    void height;
  }));
  offs.push(client.onAny((event: ReceivedEvent) => {
    if (event.name === "packageInstall") {
      const progress: number | undefined = event.payload.progress; // narrowed to PackageEvent
      void progress;
    }
  }));
  offs.push(client.onState((state: ConnectionState, detail) => {
    const retry: number | null = detail.retryInMs;
    void state;
    void retry;
  }));

  // @ts-expect-error `requestPackages` is `from_ui`: the server never sends it.
  client.on("requestPackages", () => {});
  // @ts-expect-error `pushNotification` never crosses the bridge.
  client.on("pushNotification", () => {});
  // @ts-expect-error a notification has no `progress`.
  client.on("notification", (n) => n.progress);

  // Only `from_ui` events can be sent, with their payload (none here).
  void client.emit("requestPackages");
  void client.emit("requestChainData").catch((error: unknown) => {
    if (error instanceof BridgeError) {
      const code: string = error.code;
      void code;
    }
  });
  // @ts-expect-error `notification` is `to_ui`: the UI may not send it.
  void client.emit("notification", { id: "x", type: "info", title: "t", body: "b", timestamp: 0 });
  // @ts-expect-error `requestPackages` takes no payload.
  void client.emit("requestPackages", {});
  // @ts-expect-error unknown event.
  void client.emit("requestEverything");
  return offs;
}

export const client: Client = connect("ws://localhost:8080/events", { token: "t", maxDelayMs: 5_000 });
// @ts-expect-error the token is required.
connect("ws://localhost:8080/events", {});

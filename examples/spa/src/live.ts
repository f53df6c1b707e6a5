import { useEffect } from "react";
import type { OperationContext } from "urql";

// Live updates (the repository's docs/api.md, "Live updates"). A page subscribes to what
// changes it, naming the types an event changes (`additionalTypenames`): urql's document
// cache then runs again every query that holds one of them, the page's own among them, as
// after a mutation. The server sends only what changes while one is subscribed, so after the
// WebSocket came back from a drop a page reads itself again.
export const reconnected = new EventTarget();

export function useRefreshOnReconnect(reexecute: (opts?: Partial<OperationContext>) => void): void {
  useEffect(() => {
    const refresh = () => reexecute({ requestPolicy: "network-only" });
    reconnected.addEventListener("reconnected", refresh);
    return () => reconnected.removeEventListener("reconnected", refresh);
  }, [reexecute]);
}

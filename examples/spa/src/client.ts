import { createClient as createWebSocketClient } from "graphql-ws";
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from "urql";

import { reconnected } from "./live";
import { getToken } from "./session";

function authorization(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// Subscriptions go over a WebSocket to the same URL (ws:// or wss://), graphql-transport-ws,
// the token in connection_init's payload (docs/api.md, "Live updates").
function webSocketUrl(url: string): string {
  const target = new URL(url, window.location.href);
  target.protocol = target.protocol === "https:" ? "wss:" : "ws:";
  return target.href;
}

// One urql client per signed-in token. fetchExchange speaks the GraphQL multipart request
// spec by itself when a variable holds a File (submitEvidence).
export function makeClient(url: string): Client {
  // Opened with the first subscription, closed after the last; after a drop it connects
  // again, ever, waiting 1, 2, 4 ... up to 30 s (and a random second) in between.
  const live = createWebSocketClient({
    url: webSocketUrl(url),
    connectionParams: authorization,
    retryAttempts: Infinity,
    retryWait: (retries) =>
      new Promise((resolve) => setTimeout(resolve, Math.min(2 ** retries, 30) * 1000 + Math.random() * 1000)),
    on: {
      connected: (_socket, _payload, wasRetry) => {
        if (wasRetry) reconnected.dispatchEvent(new Event("reconnected"));
      },
    },
  });
  return new Client({
    url,
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({
            unsubscribe: live.subscribe({ ...request, query: request.query ?? "" }, sink),
          }),
        }),
      }),
    ],
    // certgraph answers GET /graphql with 405 in production: queries travel by POST.
    preferGetMethod: false,
    requestPolicy: "cache-and-network",
    fetchOptions: () => ({ headers: authorization() }),
  });
}

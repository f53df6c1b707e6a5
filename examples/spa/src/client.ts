import { Client, cacheExchange, fetchExchange } from "urql";

import { getToken } from "./session";

// One urql client per signed-in token. fetchExchange speaks the GraphQL multipart request
// spec by itself when a variable holds a File (submitEvidence).
export function makeClient(url: string): Client {
  return new Client({
    url,
    exchanges: [cacheExchange, fetchExchange],
    // certgraph answers GET /graphql with 405 in production: queries travel by POST.
    preferGetMethod: false,
    requestPolicy: "cache-and-network",
    fetchOptions: () => {
      const token = getToken();
      return token ? { headers: { Authorization: `Bearer ${token}` } } : {};
    },
  });
}

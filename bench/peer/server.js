// PostGraphile 4 on the bench's PostgreSQL database, read-only, in one process:
//   node bench/peer/server.js postgres://postgres@127.0.0.1:5432/certgraph_bench 18900
// POST /graphql; GET /healthz answers 200 once the schema is built. No auth, no mutations,
// no GraphiQL, no query log; a pg pool of up to 5 connections (the floor's asyncpg pool).
// Every connection is read-only (default_transaction_read_only), so nothing can write.
"use strict";
const http = require("http");
const { Pool } = require("pg");
const { postgraphile } = require("postgraphile");

const [url, port] = process.argv.slice(2);
if (!url || !port) {
  console.error("usage: node server.js POSTGRES_URL PORT");
  process.exit(2);
}
const pool = new Pool({
  connectionString: url,
  max: 5,
  options: "-c default_transaction_read_only=on",
});
const graphql = postgraphile(pool, "public", {
  disableDefaultMutations: true,
  graphiql: false,
  disableQueryLog: true,
  watchPg: false,
  retryOnInitFail: false,
  setofFunctionsContainNulls: false,
  legacyRelations: "omit",
});
let ready = false;
graphql.getGraphQLSchema().then(
  () => {
    ready = true;
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
const server = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(ready ? 200 : 503, { "Content-Type": "text/plain" });
    res.end(ready ? "ok" : "starting");
    return;
  }
  graphql(req, res);
});
server.listen(Number(port), "127.0.0.1");
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    pool.end().finally(() => process.exit(0));
  });
}

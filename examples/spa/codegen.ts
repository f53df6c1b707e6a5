// GraphQL Code Generator: typed documents for every graphql(`...`) in src/, checked against
// certgraph's schema (the repository's schema.graphql). A document the schema no longer
// matches fails here, before tsc runs.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["src/**/*.{ts,tsx}", "!src/gql/**/*"],
  ignoreNoDocuments: false,
  errorsOnly: true,
  generates: {
    "./src/gql/": {
      preset: "client",
      // persisted-documents.json beside the code: {sha256: document}, the manifest of
      // CERTGRAPH_PERSISTED_QUERIES_FILE (docs/api.md, "Persisted queries").
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: "sha256" } },
      config: {
        scalars: {
          Date: "string",
          DateTime: "string",
          Upload: "File",
          JSON: "unknown",
        },
        strictScalars: true,
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;

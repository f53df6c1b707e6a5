// Where certgraph is: /config.json beside index.html when the host serves one (so one build
// runs against any server), else the URL given at build time, else `make run`'s address.
export interface AppConfig {
  graphqlUrl: string;
  pageSize: number;
}

const DEFAULTS: AppConfig = {
  graphqlUrl: import.meta.env.VITE_CERTGRAPH_URL ?? "http://127.0.0.1:8000/graphql",
  pageSize: 10,
};

export async function loadConfig(): Promise<AppConfig> {
  try {
    const response = await fetch("./config.json", { cache: "no-store" });
    if (!response.ok) return DEFAULTS;
    const given = (await response.json()) as Partial<AppConfig>;
    return {
      graphqlUrl: typeof given.graphqlUrl === "string" ? given.graphqlUrl : DEFAULTS.graphqlUrl,
      pageSize: typeof given.pageSize === "number" ? given.pageSize : DEFAULTS.pageSize,
    };
  } catch {
    // No config.json (the dev server answers index.html instead): the defaults.
    return DEFAULTS;
  }
}

import { useCallback, useEffect, useMemo, useState, type FormEvent } from "react";
import { Provider, useQuery } from "urql";

import { makeClient } from "./client";
import type { AppConfig } from "./config";
import { ProblemBanner, ProblemProvider, fromCombinedError, useProblem } from "./errors";
import { graphql } from "./gql";
import { CertificationList } from "./pages/CertificationList";
import { CertificationPage } from "./pages/CertificationPage";
import { ReviewQueue } from "./pages/ReviewQueue";
import { href, useRoute } from "./routes";
import { clearToken, getToken, setToken } from "./session";

const ViewerQuery = graphql(`
  query Viewer {
    viewer {
      id
      name
      role
    }
  }
`);

export function App({ config }: { config: AppConfig }) {
  const [token, setSignedIn] = useState(getToken);
  // A new client (and so an empty cache) for every token.
  const client = useMemo(() => makeClient(config.graphqlUrl), [config.graphqlUrl, token]);
  const signIn = useCallback((value: string) => {
    setToken(value);
    setSignedIn(value);
  }, []);
  const signOut = useCallback(() => {
    clearToken();
    setSignedIn(null);
  }, []);
  return (
    <ProblemProvider>
      <Provider value={client}>
        {token ? <Shell config={config} onSignOut={signOut} /> : <SignIn onSignIn={signIn} />}
      </Provider>
    </ProblemProvider>
  );
}

function SignIn({ onSignIn }: { onSignIn: (token: string) => void }) {
  const { report } = useProblem();
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    report(null);
    const token = String(new FormData(event.currentTarget).get("token") ?? "").trim();
    if (token) onSignIn(token);
  };
  return (
    <main>
      <ProblemBanner />
      <section>
        <h1>Sign in</h1>
        <form id="sign-in" onSubmit={submit}>
          <label>
            API token <input name="token" type="password" autoComplete="off" size={48} placeholder="cg_…" />
          </label>
          <button type="submit">Sign in</button>
        </form>
      </section>
    </main>
  );
}

function Shell({ config, onSignOut }: { config: AppConfig; onSignOut: () => void }) {
  const route = useRoute();
  const { report } = useProblem();
  const [{ data, error, fetching }] = useQuery({ query: ViewerQuery });

  useEffect(() => {
    if (error) {
      report(fromCombinedError(error));
      // A token the server refuses is no use: back to the sign-in form, with the code shown.
      if (error.graphQLErrors[0]?.extensions?.code === "UNAUTHENTICATED") onSignOut();
    }
  }, [error, report, onSignOut]);

  // A page's problem is not the next page's.
  useEffect(() => report(null), [route, report]);

  const viewer = data?.viewer;
  const reviews = viewer?.role === "MANAGER" || viewer?.role === "ADMIN";
  return (
    <>
      <header>
        <strong>certgraph</strong>
        <a href={href({ page: "certifications" })}>Certifications</a>
        {reviews && <a href={href({ page: "review" })}>Review queue</a>}
        <span className="who" id="viewer" data-role={viewer?.role ?? ""}>
          {viewer ? `${viewer.name} (${viewer.role})` : fetching ? "…" : ""}
        </span>
        <button type="button" id="sign-out" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main>
        <ProblemBanner />
        {viewer && route.page === "certifications" && <CertificationList pageSize={config.pageSize} />}
        {viewer && route.page === "certification" && <CertificationPage id={route.id} />}
        {viewer && route.page === "review" && <ReviewQueue />}
      </main>
    </>
  );
}

import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import type { CombinedError } from "urql";

// Every failure shows one code: a GraphQL error's extensions.code (certgraph answers every
// non-2xx status with the same JSON shape), a mutation payload's UserError code, or a code of
// the page's own (NETWORK_ERROR, or a file checked in the browser before it is sent).
export interface Problem {
  code: string;
  message: string;
}

export function fromCombinedError(error: CombinedError): Problem {
  const first = error.graphQLErrors[0];
  if (first) {
    const code = first.extensions?.code;
    return { code: typeof code === "string" ? code : "GRAPHQL_ERROR", message: first.message };
  }
  return { code: "NETWORK_ERROR", message: error.networkError?.message ?? error.message };
}

interface UserErrorLike {
  code: string;
  message: string;
}

// The problem of a mutation's answer: a GraphQL error, else the payload's first UserError.
export function problemOf(
  error: CombinedError | undefined,
  payload: { errors: readonly UserErrorLike[] } | null | undefined,
): Problem | null {
  if (error) return fromCombinedError(error);
  const first = payload?.errors[0];
  if (first) return { code: first.code, message: first.message };
  if (!payload) return { code: "NO_PAYLOAD", message: "the server answered without a result" };
  return null;
}

interface Reporter {
  problem: Problem | null;
  report: (problem: Problem | null) => void;
}

const ProblemContext = createContext<Reporter>({ problem: null, report: () => undefined });

export function ProblemProvider({ children }: { children: ReactNode }) {
  const [problem, setProblem] = useState<Problem | null>(null);
  const report = useCallback((next: Problem | null) => setProblem(next), []);
  const value = useMemo(() => ({ problem, report }), [problem, report]);
  return <ProblemContext.Provider value={value}>{children}</ProblemContext.Provider>;
}

export function useProblem(): Reporter {
  return useContext(ProblemContext);
}

export function ProblemBanner() {
  const { problem, report } = useProblem();
  if (!problem) return null;
  return (
    <div id="error" className="error" role="alert" data-code={problem.code}>
      <code>{problem.code}</code> {problem.message}{" "}
      <button type="button" onClick={() => report(null)}>
        Dismiss
      </button>
    </div>
  );
}

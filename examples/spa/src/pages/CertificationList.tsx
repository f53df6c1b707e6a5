import { useEffect, useState } from "react";
import { useQuery } from "urql";

import { EnrollmentDates } from "../components/EnrollmentDates";
import { fromCombinedError, useProblem } from "../errors";
import { graphql } from "../gql";
import { href } from "../routes";

// The catalog in RELEVANCE order: the viewer's own enrollments first (what needs action,
// then what is in progress, ...), then what they could start, newest first.
const CatalogQuery = graphql(`
  query Catalog($first: Int, $after: String, $last: Int, $before: String) {
    certifications(sort: RELEVANCE, first: $first, after: $after, last: $last, before: $before) {
      totalCount
      pageInfo {
        hasNextPage
        hasPreviousPage
        startCursor
        endCursor
      }
      edges {
        node {
          id
          name
          kind
          type
          issuer
          viewerEnrollment {
            id
            status
            progressPercent
            dueAt
            completedOn
            expiresOn
          }
        }
      }
    }
  }
`);

// Forward: first/after; backward: last/before. The server pages both ways, so the page
// keeps no stack of cursors.
type PageArgs =
  | { first: number; after: string | null; last?: undefined; before?: undefined }
  | { last: number; before: string; first?: undefined; after?: undefined };

export function CertificationList({ pageSize }: { pageSize: number }) {
  const [page, setPage] = useState<PageArgs>({ first: pageSize, after: null });
  const [{ data, error, fetching }] = useQuery({ query: CatalogQuery, variables: page });
  const { report } = useProblem();
  useEffect(() => {
    if (error) report(fromCombinedError(error));
  }, [error, report]);

  const connection = data?.certifications;
  const pageInfo = connection?.pageInfo;
  // Having come back with `before`, there is a page after this one; forward with `after`,
  // one before it.
  const canGoNext = !!pageInfo?.endCursor && (pageInfo.hasNextPage || page.before != null);
  const canGoBack = !!pageInfo?.startCursor && (pageInfo.hasPreviousPage || page.after != null);

  return (
    <section id="certifications" data-loaded={connection && !fetching ? "true" : undefined}>
      <h1>My certifications</h1>
      <p>{connection ? `${connection.totalCount} certifications` : "Loading…"}</p>
      <table>
        <thead>
          <tr>
            <th>Certification</th>
            <th>Kind</th>
            <th>Status</th>
            <th>Completed</th>
            <th>Expires</th>
          </tr>
        </thead>
        <tbody>
          {connection?.edges.map(({ node }) => (
            <tr key={node.id} className="certification" data-id={node.id}>
              <td>
                <a className="name" href={href({ page: "certification", id: node.id })}>
                  {node.name}
                </a>
                <div>{node.issuer}</div>
              </td>
              <td>{node.kind}</td>
              <td>
                <span className="status">{node.viewerEnrollment?.status ?? "NOT ENROLLED"}</span>
                {node.viewerEnrollment && ` ${node.viewerEnrollment.progressPercent}%`}
              </td>
              <EnrollmentDates enrollment={node.viewerEnrollment} as="cells" />
            </tr>
          ))}
        </tbody>
      </table>
      <div className="pager">
        <button
          type="button"
          id="previous"
          disabled={!canGoBack || fetching}
          onClick={() => pageInfo?.startCursor && setPage({ last: pageSize, before: pageInfo.startCursor })}
        >
          ← Previous
        </button>
        <button
          type="button"
          id="next"
          disabled={!canGoNext || fetching}
          onClick={() => pageInfo?.endCursor && setPage({ first: pageSize, after: pageInfo.endCursor })}
        >
          Next →
        </button>
      </div>
    </section>
  );
}

import { useEffect } from "react";
import { useMutation, useQuery, useSubscription } from "urql";

import { Day } from "../components/EnrollmentDates";
import { Preview } from "../components/Preview";
import { formatInstant } from "../dates";
import { fromCombinedError, problemOf, useProblem } from "../errors";
import { graphql } from "../gql";
import type { ReviewDecision } from "../gql/graphql";
import { useRefreshOnReconnect } from "../live";

// A manager's queue: their direct reports' proof that waits for a decision, oldest first.
const ReviewQueueQuery = graphql(`
  query ReviewQueue {
    evidenceReviewQueue(first: 50) {
      totalCount
      edges {
        node {
          id
          filename
          contentType
          status
          completedOn
          submittedAt
          note
          viewerCan {
            review
          }
          preview {
            url
            expiresAt
          }
          enrollment {
            id
            learner {
              name
            }
            certification {
              name
            }
          }
        }
      }
    }
  }
`);

const ReviewMutation = graphql(`
  mutation Review($id: ID!, $decision: ReviewDecision!, $comment: String) {
    reviewEvidence(evidenceId: $id, decision: $decision, comment: $comment) {
      evidence {
        id
        status
      }
      errors {
        code
        message
        field
      }
    }
  }
`);

// Proof entering (a report uploaded it) or leaving (someone reviewed it) the queue, live: the
// queue (an Evidence query) runs again.
const QueueChangedSubscription = graphql(`
  subscription ReviewQueueChanged {
    evidenceReviewQueueChanged {
      change
      evidenceId
    }
  }
`);

const REFRESHED_BY = { additionalTypenames: ["Evidence"] };

export function ReviewQueue() {
  // Read again after every review (reviewEvidence answers the Evidence), and the queue's own.
  const [{ data, error, fetching }, reexecute] = useQuery({ query: ReviewQueueQuery, context: REFRESHED_BY });
  useSubscription({ query: QueueChangedSubscription, context: REFRESHED_BY });
  useRefreshOnReconnect(reexecute);
  const [review, reviewEvidence] = useMutation(ReviewMutation);
  const { report } = useProblem();
  useEffect(() => {
    if (error) report(fromCombinedError(error));
  }, [error, report]);

  const decide = async (id: string, decision: ReviewDecision) => {
    const result = await reviewEvidence({ id, decision, comment: null });
    const problem = problemOf(result.error, result.data?.reviewEvidence);
    report(problem);
  };

  const queue = data?.evidenceReviewQueue;
  return (
    <section id="review-queue" data-loaded={queue && !fetching ? "true" : undefined}>
      <h1>Review queue</h1>
      <p>{queue ? `${queue.totalCount} waiting` : "Loading…"}</p>
      <ul>
        {queue?.edges.map(({ node }) => (
          <li key={node.id} className="review" data-id={node.id}>
            <strong className="learner">{node.enrollment.learner.name}</strong>:{" "}
            <span className="certification">{node.enrollment.certification.name}</span>,{" "}
            <span className="filename">{node.filename}</span>
            <dl>
              <dt>Completed on</dt>
              <dd>
                <Day className="completed-on" value={node.completedOn} />
              </dd>
              <dt>Uploaded</dt>
              <dd>{formatInstant(node.submittedAt)}</dd>
              {node.note && (
                <>
                  <dt>Note</dt>
                  <dd>{node.note}</dd>
                </>
              )}
            </dl>
            <Preview
              preview={node.preview}
              contentType={node.contentType}
              title={`Preview of ${node.filename}`}
            />
            <button
              type="button"
              className="approve"
              disabled={!node.viewerCan.review || review.fetching}
              onClick={() => void decide(node.id, "APPROVE")}
            >
              Approve
            </button>{" "}
            <button
              type="button"
              className="reject"
              disabled={!node.viewerCan.review || review.fetching}
              onClick={() => void decide(node.id, "REJECT")}
            >
              Reject
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

import { useEffect } from "react";
import { useMutation, useQuery, useSubscription } from "urql";

import { EnrollmentDates } from "../components/EnrollmentDates";
import { EvidenceList } from "../components/EvidenceList";
import { EvidenceUpload } from "../components/EvidenceUpload";
import { formatInstant } from "../dates";
import { fromCombinedError, problemOf, useProblem } from "../errors";
import { graphql } from "../gql";
import { useRefreshOnReconnect } from "../live";

const CertificationQuery = graphql(`
  query CertificationPage($id: ID!) {
    certification(id: $id) {
      id
      name
      overview
      kind
      type
      issuer
      validityMonths
      badge {
        name
        image {
          url
        }
      }
      viewerCan {
        start
        submitEvidence
      }
      evidenceRequirements {
        completionDateRequired
        maxBytes
        acceptedContentTypes
        maxNoteLength
      }
      courses {
        mandatory
        course {
          id
          name
          durationMinutes
        }
      }
      viewerEnrollment {
        id
        status
        progressPercent
        explanation
        cycle
        startedAt
        dueAt
        overdue
        completedOn
        expiresOn
        viewerCan {
          recordProgress
        }
        courses {
          percent
          status
          course {
            id
          }
        }
        evidence {
          id
          filename
          contentType
          sizeBytes
          status
          completedOn
          submittedAt
          reviewComment
          preview {
            url
            expiresAt
          }
        }
      }
    }
  }
`);

const StartMutation = graphql(`
  mutation Start($id: ID!) {
    startCertification(certificationId: $id) {
      enrollment {
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

const RecordProgressMutation = graphql(`
  mutation RecordProgress($input: RecordCourseProgressInput!) {
    recordCourseProgress(input: $input) {
      progress {
        percent
        status
      }
      enrollments {
        id
        status
        progressPercent
      }
      errors {
        code
        message
        field
      }
    }
  }
`);

// Each change of one of the viewer's enrollments (a manager's review among them), live: the
// queries holding an Enrollment run again (this page's, the list's when shown next).
const EnrollmentChangedSubscription = graphql(`
  subscription EnrollmentChanged {
    viewerEnrollmentChanged {
      id
      status
      certification {
        id
      }
    }
  }
`);

// urql's document cache runs this page's query again after any mutation that answers one of
// these types (starting, recording progress, uploading proof), also when the page held none.
const REFRESHED_BY = { additionalTypenames: ["Enrollment", "Evidence", "CourseProgress"] };
const CHANGES = { additionalTypenames: ["Enrollment"] };

export function CertificationPage({ id }: { id: string }) {
  const [{ data, error, fetching }, reexecute] = useQuery({
    query: CertificationQuery,
    variables: { id },
    context: REFRESHED_BY,
  });
  useSubscription({ query: EnrollmentChangedSubscription, context: CHANGES });
  useRefreshOnReconnect(reexecute);
  const [start, startCertification] = useMutation(StartMutation);
  const [record, recordProgress] = useMutation(RecordProgressMutation);
  const { report } = useProblem();
  useEffect(() => {
    if (error) report(fromCombinedError(error));
  }, [error, report]);

  const certification = data?.certification;
  if (!certification) {
    return <section id="certification">{fetching ? "Loading…" : "No such certification."}</section>;
  }
  const enrollment = certification.viewerEnrollment;
  const progressOf = new Map(enrollment?.courses.map((c) => [c.course.id, c]) ?? []);
  const canRecord = !!enrollment?.viewerCan.recordProgress && !record.fetching;

  const onStart = async () => {
    const result = await startCertification({ id: certification.id });
    const problem = problemOf(result.error, result.data?.startCertification);
    report(problem);
  };

  const onRecord = async (courseId: string, percent: number) => {
    const input = percent >= 100 ? { courseId, completed: true } : { courseId, percent };
    const result = await recordProgress({ input });
    const problem = problemOf(result.error, result.data?.recordCourseProgress);
    report(problem);
  };

  return (
    <>
      <section id="certification" data-id={certification.id} data-kind={certification.kind}>
        <h1>{certification.name}</h1>
        {certification.badge?.image && (
          <img src={certification.badge.image.url} alt={certification.badge.name} height={64} />
        )}
        <p>{certification.overview}</p>
        <dl>
          <dt>Kind</dt>
          <dd>{certification.kind}</dd>
          <dt>Type</dt>
          <dd>
            {certification.type}
            {certification.validityMonths ? `, valid ${certification.validityMonths} months` : ""}
          </dd>
          <dt>Issuer</dt>
          <dd>{certification.issuer}</dd>
        </dl>
      </section>

      <section id="enrollment" data-status={enrollment?.status ?? ""}>
        <h2>My enrollment</h2>
        {enrollment ? (
          <dl>
            <dt>Status</dt>
            <dd>
              <span className="status" id="enrollment-status">
                {enrollment.status}
              </span>{" "}
              {enrollment.progressPercent}% (cycle {enrollment.cycle})
            </dd>
            <dt>Where I stand</dt>
            <dd id="explanation">{enrollment.explanation}</dd>
            <dt>Due</dt>
            <dd>
              {enrollment.dueAt ? formatInstant(enrollment.dueAt) : "—"}
              {enrollment.overdue ? " (overdue)" : ""}
            </dd>
            <EnrollmentDates enrollment={enrollment} as="list" />
          </dl>
        ) : (
          <p>Not enrolled yet.</p>
        )}
        {!enrollment?.startedAt && (
          <button
            type="button"
            id="start"
            disabled={!certification.viewerCan.start || start.fetching}
            onClick={onStart}
          >
            Start
          </button>
        )}
      </section>

      {certification.courses.length > 0 && (
        <section id="courses">
          <h2>Courses</h2>
          <table>
            <thead>
              <tr>
                <th>Course</th>
                <th>Mandatory</th>
                <th>Progress</th>
                <th>Record progress</th>
              </tr>
            </thead>
            <tbody>
              {certification.courses.map(({ course, mandatory }) => {
                const progress = progressOf.get(course.id);
                return (
                  <tr key={course.id} className="course" data-id={course.id}>
                    <td className="course-name">{course.name}</td>
                    <td>{mandatory ? "yes" : "no"}</td>
                    <td className="course-progress" data-percent={progress?.percent ?? 0}>
                      {progress ? `${progress.percent}% (${progress.status})` : "—"}
                    </td>
                    <td>
                      <form
                        className="inline record"
                        onSubmit={(event) => {
                          event.preventDefault();
                          const percent = Number(new FormData(event.currentTarget).get("percent"));
                          void onRecord(course.id, percent);
                        }}
                      >
                        <input
                          name="percent"
                          type="number"
                          min={0}
                          max={100}
                          defaultValue={progress?.percent ?? 0}
                          aria-label={`Percent of ${course.name}`}
                        />
                        <button type="submit" disabled={!canRecord}>
                          Record
                        </button>
                      </form>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>
      )}

      {certification.kind === "EXTERNAL" && certification.evidenceRequirements && (
        <section id="evidence">
          <h2>Proof</h2>
          <EvidenceUpload
            certificationId={certification.id}
            requirements={certification.evidenceRequirements}
            allowed={certification.viewerCan.submitEvidence}
          />
          <EvidenceList evidence={enrollment?.evidence ?? []} />
        </section>
      )}
    </>
  );
}

import { formatInstant } from "../dates";
import { Day } from "./EnrollmentDates";
import { Preview } from "./Preview";

interface EvidenceItem {
  id: string;
  filename: string;
  contentType: string;
  sizeBytes: number;
  status: string;
  completedOn?: string | null;
  submittedAt: string;
  reviewComment?: string | null;
  preview?: { url: string; expiresAt: string } | null;
}

export function EvidenceList({ evidence }: { evidence: readonly EvidenceItem[] }) {
  if (evidence.length === 0) return <p>No proof uploaded yet.</p>;
  return (
    <ul id="evidence-list">
      {evidence.map((item) => (
        <li key={item.id} className="evidence" data-id={item.id} data-status={item.status}>
          <strong className="filename">{item.filename}</strong> <span className="status">{item.status}</span>
          <dl>
            <dt>Completed on</dt>
            <dd>
              <Day className="completed-on" value={item.completedOn} />
            </dd>
            <dt>Uploaded</dt>
            <dd>
              {formatInstant(item.submittedAt)} ({item.contentType}, {item.sizeBytes} bytes)
            </dd>
            {item.reviewComment && (
              <>
                <dt>Review</dt>
                <dd>{item.reviewComment}</dd>
              </>
            )}
          </dl>
          <Preview
            preview={item.preview}
            contentType={item.contentType}
            title={`Preview of ${item.filename}`}
          />
        </li>
      ))}
    </ul>
  );
}

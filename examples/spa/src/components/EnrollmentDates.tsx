import { formatDate } from "../dates";

interface Dated {
  completedOn?: string | null;
  expiresOn?: string | null;
}

// The award's days as calendar dates (GraphQL `Date`), never moved by the browser's time zone.
export function Day({ value, className }: { value: string | null | undefined; className: string }) {
  if (!value) return <span className={className}>—</span>;
  return (
    <time className={className} dateTime={value}>
      {formatDate(value)}
    </time>
  );
}

export function EnrollmentDates({
  enrollment,
  as,
}: {
  enrollment: Dated | null | undefined;
  as: "cells" | "list";
}) {
  if (as === "cells") {
    return (
      <>
        <td>
          <Day className="completed-on" value={enrollment?.completedOn} />
        </td>
        <td>
          <Day className="expires-on" value={enrollment?.expiresOn} />
        </td>
      </>
    );
  }
  return (
    <>
      <dt>Completed on</dt>
      <dd>
        <Day className="completed-on" value={enrollment?.completedOn} />
      </dd>
      <dt>Expires on</dt>
      <dd>
        <Day className="expires-on" value={enrollment?.expiresOn} />
      </dd>
    </>
  );
}

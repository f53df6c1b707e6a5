import { useState, type FormEvent } from "react";
import { useMutation } from "urql";

import { today } from "../dates";
import { problemOf, useProblem, type Problem } from "../errors";
import { graphql } from "../gql";

const SubmitEvidenceMutation = graphql(`
  mutation SubmitEvidence($certificationId: ID!, $file: Upload!, $completedOn: Date, $note: String) {
    submitEvidence(certificationId: $certificationId, file: $file, completedOn: $completedOn, note: $note) {
      evidence {
        id
        status
        completedOn
      }
      errors {
        code
        message
        field
      }
    }
  }
`);

interface Requirements {
  completionDateRequired: boolean;
  maxBytes: number;
  acceptedContentTypes: readonly string[];
  maxNoteLength: number;
}

// The server decides (it sniffs the bytes); checking size and type here first saves the
// learner an upload that would be refused, with the same codes the server would answer.
export function checkFile(file: File, requirements: Requirements): Problem | null {
  const { maxBytes, acceptedContentTypes } = requirements;
  if (file.size > maxBytes) {
    const message = `${file.name} is ${file.size} bytes; at most ${maxBytes} are taken`;
    return { code: "FILE_TOO_LARGE", message: `${message} (checked in the browser)` };
  }
  if (!acceptedContentTypes.includes(file.type)) {
    const type = file.type || "of an unknown type";
    const message = `${file.name} is ${type}; accepted: ${acceptedContentTypes.join(", ")}`;
    return { code: "UNSUPPORTED_FILE_TYPE", message: `${message} (checked in the browser)` };
  }
  return null;
}

export function EvidenceUpload({
  certificationId,
  requirements,
  allowed,
}: {
  certificationId: string;
  requirements: Requirements;
  allowed: boolean;
}) {
  const [state, submitEvidence] = useMutation(SubmitEvidenceMutation);
  const [fileProblem, setFileProblem] = useState<Problem | null>(null);
  const { report } = useProblem();

  const onFile = (file: File | undefined) => {
    const problem = file ? checkFile(file, requirements) : null;
    setFileProblem(problem);
    report(problem);
  };

  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const fields = new FormData(form);
    const file = fields.get("file");
    if (!(file instanceof File) || file.size === 0) {
      report({ code: "INVALID_INPUT", message: "choose a file first" });
      return;
    }
    const problem = checkFile(file, requirements);
    if (problem) {
      report(problem);
      return;
    }
    const completedOn = String(fields.get("completedOn") ?? "") || null;
    if (requirements.completionDateRequired && !completedOn) {
      report({ code: "INVALID_INPUT", message: "say on which day you earned it" });
      return;
    }
    const note = String(fields.get("note") ?? "") || null;
    const result = await submitEvidence({ certificationId, file, completedOn, note });
    const refused = problemOf(result.error, result.data?.submitEvidence);
    report(refused);
    if (!refused) form.reset();
  };

  return (
    <form id="upload" onSubmit={submit}>
      <label>
        Certificate{" "}
        <input
          name="file"
          type="file"
          accept={requirements.acceptedContentTypes.join(",")}
          onChange={(event) => onFile(event.currentTarget.files?.[0])}
        />
      </label>
      <small>
        {requirements.acceptedContentTypes.join(", ")}; at most {Math.floor(requirements.maxBytes / 1024)} KiB
      </small>
      {requirements.completionDateRequired && (
        <label>
          Completed on <input name="completedOn" type="date" required max={today()} />
        </label>
      )}
      <label>
        Note <input name="note" type="text" maxLength={requirements.maxNoteLength} />
      </label>
      <button type="submit" disabled={!allowed || !!fileProblem || state.fetching}>
        Upload
      </button>
    </form>
  );
}

import { useState } from "react";

import { formatInstant } from "../dates";

// A signed, short-lived URL that needs no token: an <img> for images, an <iframe> for a PDF.
// data-loaded says the browser finished loading it (this URL: a page read again gets a new one).
export function Preview({
  preview,
  contentType,
  title,
}: {
  preview: { url: string; expiresAt: string } | null | undefined;
  contentType: string;
  title: string;
}) {
  const [loaded, setLoaded] = useState<string | null>(null);
  if (!preview) return <span className="no-preview">no preview</span>;
  const { url } = preview;
  const common = {
    className: "preview",
    src: url,
    title,
    "data-loaded": loaded === url ? "true" : undefined,
    onLoad: () => setLoaded(url),
  };
  return (
    <figure>
      {contentType.startsWith("image/") ? <img {...common} alt={title} /> : <iframe {...common} />}
      <figcaption>link valid until {formatInstant(preview.expiresAt)}</figcaption>
    </figure>
  );
}

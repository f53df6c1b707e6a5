import { useState } from "react";

import { formatInstant } from "../dates";

// A signed, short-lived URL that needs no token: an <img> for images, an <iframe> for a PDF.
// data-loaded says the browser finished loading it.
export function Preview({
  preview,
  contentType,
  title,
}: {
  preview: { url: string; expiresAt: string } | null | undefined;
  contentType: string;
  title: string;
}) {
  const [loaded, setLoaded] = useState(false);
  if (!preview) return <span className="no-preview">no preview</span>;
  const common = {
    className: "preview",
    src: preview.url,
    title,
    "data-loaded": loaded ? "true" : undefined,
    onLoad: () => setLoaded(true),
  };
  return (
    <figure>
      {contentType.startsWith("image/") ? <img {...common} alt={title} /> : <iframe {...common} />}
      <figcaption>link valid until {formatInstant(preview.expiresAt)}</figcaption>
    </figure>
  );
}

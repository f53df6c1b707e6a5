import { useEffect, useState } from "react";

// Hash routes, so any static file server can host the app: #/certifications,
// #/certifications/<id>, #/review.
export type Route = { page: "certifications" } | { page: "certification"; id: string } | { page: "review" };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#\/?/, "");
  const [first, second] = path.split("/");
  if (first === "certifications" && second) return { page: "certification", id: decodeURIComponent(second) };
  if (first === "review") return { page: "review" };
  return { page: "certifications" };
}

export function href(route: Route): string {
  switch (route.page) {
    case "certification":
      return `#/certifications/${encodeURIComponent(route.id)}`;
    case "review":
      return "#/review";
    default:
      return "#/certifications";
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

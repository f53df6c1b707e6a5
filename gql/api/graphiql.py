"""GraphiQL served by certgraph alone: the page (debug mode) and its vendored assets
(gql/static/graphiql/, see its README), so it works with no network beyond the machine; in
production `GET /graphql` answers a short JSON hint instead."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from gql.http.errors import error_response, language_of
from gql.http.guards import GRAPHQL_PATH
from gql.i18n import t

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "graphiql"
STATIC_PATH = "/graphiql/static"
# Folders are named with their package's version, so a URL never changes content.
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
METHOD_HINT_CODE = "METHOD_NOT_ALLOWED"
METHOD_HINT = t(
    "GraphQL queries are POSTed to /graphql as JSON, e.g. "
    '{"query": "{ viewer { name } }"} with Authorization: Bearer <token>; '
    "GraphiQL, the in-browser IDE, is served here only with CERTGRAPH_DEBUG=true"
)


@dataclass(frozen=True)
class Asset:
    path: str  # under STATIC_DIR and STATIC_PATH
    media_type: str
    integrity: str  # the SHA-384 strawberry's page pins for the same unpkg file


ASSETS = {
    asset.path: asset
    for asset in (
        Asset(
            "react-18.2.0/react.production.min.js",
            "text/javascript",
            "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
        ),
        Asset(
            "react-dom-18.2.0/react-dom.production.min.js",
            "text/javascript",
            "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
        ),
        Asset(
            "js-cookie-3.0.5/js.cookie.min.js",
            "text/javascript",
            "sha384-/vxhYfM1LENRhdpZ8dwEsQn/X4VhpbEZSiU4m/FwR+PVpzar4fkEOw8FP9Y+OfQN",
        ),
        Asset(
            "graphiql-3.8.3/graphiql.min.css",
            "text/css",
            "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
        ),
        Asset(
            "plugin-explorer-1.0.2/style.css",
            "text/css",
            "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
        ),
        Asset(
            "graphiql-3.8.3/graphiql.min.js",
            "text/javascript",
            "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
        ),
        Asset(
            "plugin-explorer-1.0.2/index.umd.js",
            "text/javascript",
            "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
        ),
    )
}

# The page may load and call only its own server: a forgotten CDN URL fails loudly.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


def _asset_tag(path: str) -> str:
    asset = ASSETS[path]
    # Relative to the page at /graphql, so the app also works mounted under a prefix.
    url = f"{STATIC_PATH.lstrip('/')}/{path}"
    if asset.media_type == "text/css":
        return f'<link rel="stylesheet" href="{url}" integrity="{asset.integrity}" />'
    return f'<script src="{url}" integrity="{asset.integrity}"></script>'


# strawberry's page (strawberry/static/graphiql.html) with local asset URLs and no
# subscription URL (certgraph serves none).
GRAPHIQL_HTML = f"""<!doctype html>
<html>
  <head>
    <meta charset="utf-8" />
    <title>certgraph GraphiQL</title>
    <link rel="icon" href="data:," />
    <style>
      body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; display: flex; }}
      .graphiql-explorer-actions select {{ margin-left: 4px; }}
    </style>
    {_asset_tag("react-18.2.0/react.production.min.js")}
    {_asset_tag("react-dom-18.2.0/react-dom.production.min.js")}
    {_asset_tag("js-cookie-3.0.5/js.cookie.min.js")}
    {_asset_tag("graphiql-3.8.3/graphiql.min.css")}
    {_asset_tag("plugin-explorer-1.0.2/style.css")}
  </head>
  <body>
    <div id="graphiql" class="graphiql-container">Loading...</div>
    {_asset_tag("graphiql-3.8.3/graphiql.min.js")}
    {_asset_tag("plugin-explorer-1.0.2/index.umd.js")}
    <script>
      const EXAMPLE_QUERY = `# certgraph: put your token in Headers below, e.g.
#   {{"Authorization": "Bearer <token>"}}
# then run (Ctrl-Enter):

{{
  viewer {{
    name
    role
  }}
}}
`;
      const parameters = {{}};
      for (const entry of window.location.search.slice(1).split("&")) {{
        const eq = entry.indexOf("=");
        if (eq >= 0) {{
          parameters[decodeURIComponent(entry.slice(0, eq))] =
            decodeURIComponent(entry.slice(eq + 1));
        }}
      }}
      function updateURL(data) {{
        Object.assign(parameters, data);
        const newSearch = "?" + Object.keys(parameters)
          .filter((key) => Boolean(parameters[key]))
          .map((key) => encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]))
          .join("&");
        history.replaceState(null, null, newSearch);
      }}
      const fetchURL = window.location.href.split("?")[0];
      const defaultHeaders = {{}};
      const csrfToken = Cookies.get("csrftoken");
      if (csrfToken) {{
        defaultHeaders["x-csrftoken"] = csrfToken;
      }}
      const fetcher = GraphiQL.createFetcher({{ url: fetchURL, headers: defaultHeaders }});

      function GraphiQLWithExplorer() {{
        const [query, setQuery] = React.useState(parameters.q || EXAMPLE_QUERY);
        const [variables, setVariables] = React.useState(parameters.variables);
        const [headers, setHeaders] = React.useState(parameters.headers);
        const explorerPlugin = GraphiQLPluginExplorer.explorerPlugin();
        return React.createElement(GraphiQL, {{
          fetcher: fetcher,
          defaultEditorToolsVisibility: true,
          plugins: [explorerPlugin],
          query: query,
          variables: variables,
          headers: headers,
          onEditQuery: (q) => {{ setQuery(q); updateURL({{ q: q }}); }},
          onEditVariables: (v) => {{ setVariables(v); updateURL({{ variables: v }}); }},
          onEditHeaders: setHeaders,
          inputValueDeprecation: true,
          isHeadersEditorEnabled: true,
          shouldPersistHeaders: true,
        }});
      }}
      const root = ReactDOM.createRoot(document.getElementById("graphiql"));
      root.render(React.createElement(GraphiQLWithExplorer));
    </script>
  </body>
</html>
"""


def graphiql_page() -> Response:
    """The GraphiQL page; the view answers it to a browser's GET in debug mode."""
    return HTMLResponse(GRAPHIQL_HTML, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


async def serve_asset(request: Request) -> Response:
    asset = ASSETS.get(request.path_params["path"])
    if asset is None:  # only the listed files: no directory walking, no README or LICENSE
        return error_response(404, "NOT_FOUND", "there is no such GraphiQL asset")
    return FileResponse(
        STATIC_DIR / asset.path,
        media_type=asset.media_type,
        headers={"Cache-Control": ASSET_CACHE_CONTROL, "X-Content-Type-Options": "nosniff"},
    )


async def graphql_get_hint(request: Request) -> Response:
    """Production's answer to `GET /graphql` (a browser, usually): where queries go."""
    return error_response(
        405,
        METHOD_HINT_CODE,
        METHOD_HINT,
        language=language_of(request.scope),
        headers={"Allow": "POST"},
    )


def graphiql_routes(*, debug: bool) -> list[BaseRoute]:
    """Debug: the assets GraphiQL loads. Production: the hint for `GET /graphql`, a route
    after the POST-only /graphql one (Starlette tries the next route on a method mismatch)."""
    if debug:
        return [Route(f"{STATIC_PATH}/{{path:path}}", serve_asset, methods=["GET"])]
    return [Route(GRAPHQL_PATH, graphql_get_hint, methods=["GET"])]


__all__ = [
    "ASSETS",
    "GRAPHIQL_HTML",
    "STATIC_DIR",
    "STATIC_PATH",
    "graphiql_page",
    "graphiql_routes",
]

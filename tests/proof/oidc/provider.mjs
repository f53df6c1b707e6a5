// The proof's OpenID provider: the certified `oidc-provider` package, configured from a JSON file
// the test writes (node provider.mjs <config.json>), listening on loopback over plain http.
//
// One public client (the SPA): Authorization Code with PKCE (S256, required for public
// clients), its redirect URI on the SPA's origin, CORS for that origin (the default
// clientBasedCORS). Access tokens for the one resource server (certgraph: the resource
// indicator is CERTGRAPH_OIDC_AUDIENCE) are JWTs signed RS256 with the test's key, carrying
// name, email, email_verified and the roles claim of a fixed account (extraTokenClaims).
// Sign-in is oidc-provider's own development login and consent pages (devInteractions): any
// password, the login is the account id, which must be one of the fixed accounts.
//
// Config: {port, clientId, redirectUri, audience, scope, rolesClaim, keysFile,
//          accessTokenTtl, accounts: {<sub>: {name, email, email_verified, roles}}}
// keysFile: a JWKS with the private RSA key(s) (written by tokens.mjs keygen).

import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const jwks = JSON.parse(readFileSync(config.keysFile, 'utf8'));
const accounts = config.accounts;
const rolesClaim = config.rolesClaim ?? 'roles';

function account(sub) {
  const found = accounts[sub];
  if (!found) return undefined;
  return {
    accountId: sub,
    async claims() {
      return { sub, name: found.name, email: found.email, email_verified: found.email_verified };
    },
  };
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.clientId,
      client_name: 'certgraph proof SPA',
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [config.redirectUri],
    },
  ],
  jwks,
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'profile', 'email'],
  findAccount: (_ctx, sub) => account(sub),
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== config.audience) throw new errors.InvalidTarget();
        return {
          audience: config.audience,
          scope: config.scope,
          accessTokenTTL: config.accessTokenTtl ?? 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // The person's name, e-mail and roles travel in the access token: certgraph (the resource
  // server) sees nothing else.
  extraTokenClaims: (_ctx, token) => {
    const found = token.accountId && accounts[token.accountId];
    if (!found) return undefined;
    return {
      name: found.name,
      email: found.email,
      email_verified: found.email_verified,
      [rolesClaim]: found.roles ?? [],
    };
  },
  pkce: { required: () => true },
  ttl: { AccessToken: config.accessTokenTtl ?? 600 },
});

// No icon: a 404 would be an error in the browser's log, which the proof reads.
provider.use(async (ctx, next) => {
  if (ctx.path === '/favicon.ico') {
    ctx.status = 204;
    return;
  }
  await next();
});
provider.on('server_error', (_ctx, error) => console.error('server_error', error));

const server = createServer(provider.callback());
server.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}

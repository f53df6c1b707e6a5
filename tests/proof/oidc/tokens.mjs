// Keys and tokens for the JWT proof, with `jose` (the JOSE library oidc-provider itself uses).
//
//   node tokens.mjs keygen <keys.json>  a JWKS with one new private RS256 key (kid, use: sig):
//                                       the provider signs with it (provider.mjs keysFile)
//   node tokens.mjs mint <spec.json>    prints {"valid": [token...], "forged": [{kind, token}]}
//
// spec: {keysFile, issuer, audience, clientId, scope, rolesClaim,
//        valid: [{sub, name, email, email_verified, roles, count}],
//        forged: {perKind, sub, name, email, roles}}
// Valid tokens are what the provider issues (same key and kid, typ at+jwt, same claims). The
// forged ones are what an attacker can make without the provider's private key:
//   wrong_key         signed RS256 by another key, the provider's kid (or, every other one,
//                     a kid of its own: an unknown kid)
//   alg_none          unsigned, alg "none" in several spellings, the provider's kid
//   hs256_public_key  HS256 with the provider's public key (PEM, or its JWK's JSON) as the
//                     secret: the key-confusion attack
//   tampered          a real token of the provider with its payload rewritten (sub, e-mail,
//                     roles), the signature kept
//   expired           signed by the provider's key, expired an hour ago

import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

import * as jose from 'jose';

const ALG = 'RS256';
const [command, path] = process.argv.slice(2);

if (command === 'keygen') {
  const { privateKey } = await jose.generateKeyPair(ALG, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  jwk.alg = ALG;
  jwk.use = 'sig';
  writeFileSync(path, JSON.stringify({ keys: [jwk] }), { mode: 0o600 });
} else if (command === 'mint') {
  console.log(JSON.stringify(await mint(JSON.parse(readFileSync(path, 'utf8')))));
} else {
  console.error('usage: node tokens.mjs keygen <keys.json> | mint <spec.json>');
  process.exit(2);
}

async function mint(spec) {
  const privateJwk = JSON.parse(readFileSync(spec.keysFile, 'utf8')).keys[0];
  const kid = privateJwk.kid;
  const key = await jose.importJWK(privateJwk, ALG);
  const { d, p, q, dp, dq, qi, ...publicJwk } = privateJwk;
  const publicKey = await jose.importJWK(publicJwk, ALG);
  const publicPem = await jose.exportSPKI(publicKey);
  const rolesClaim = spec.rolesClaim ?? 'roles';
  const now = Math.floor(Date.now() / 1000);

  const claims = (person, { iat = now, exp = now + 600 } = {}) => ({
    iss: spec.issuer,
    aud: spec.audience,
    sub: person.sub,
    client_id: spec.clientId,
    scope: spec.scope,
    jti: randomUUID(),
    iat,
    exp,
    name: person.name,
    email: person.email,
    email_verified: person.email_verified,
    [rolesClaim]: person.roles ?? [],
  });
  const sign = (payload, signingKey = key, header = {}) =>
    new jose.SignJWT(payload).setProtectedHeader({ alg: ALG, typ: 'at+jwt', kid, ...header }).sign(signingKey);
  const b64 = (value) => jose.base64url.encode(JSON.stringify(value));

  const valid = [];
  for (const person of spec.valid) {
    for (let i = 0; i < person.count; i += 1) valid.push(await sign(claims(person)));
  }

  const forged = [];
  const { perKind } = spec.forged;
  const attacker = (i) => ({ ...spec.forged, sub: `${spec.forged.sub}-${i}` });
  const { privateKey: otherKey } = await jose.generateKeyPair(ALG);
  const otherKid = randomUUID();
  const spellings = ['none', 'None', 'NONE', 'nOnE'];
  const secrets = [new TextEncoder().encode(publicPem), new TextEncoder().encode(JSON.stringify(publicJwk))];
  for (let i = 0; i < perKind; i += 1) {
    forged.push({
      kind: 'wrong_key',
      token: await sign(claims(attacker(i)), otherKey, i % 2 ? { kid: otherKid } : {}),
    });
    forged.push({
      kind: 'alg_none',
      token: `${b64({ alg: spellings[i % spellings.length], typ: 'at+jwt', kid })}.${b64(claims(attacker(i)))}.`,
    });
    forged.push({
      kind: 'hs256_public_key',
      token: await new jose.SignJWT(claims(attacker(i)))
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid })
        .sign(secrets[i % secrets.length]),
    });
    const [header, , signature] = (await sign(claims(spec.valid[0]))).split('.');
    forged.push({ kind: 'tampered', token: `${header}.${b64(claims(attacker(i)))}.${signature}` });
    forged.push({
      kind: 'expired',
      token: await sign(claims(attacker(i), { iat: now - 7200, exp: now - 3600 })),
    });
  }
  return { valid, forged };
}

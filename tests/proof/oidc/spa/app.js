// The SPA of the proof: a public OAuth client. Sign-in is the Authorization Code flow with PKCE
// (S256) at the OpenID provider, through oauth4webapi (its PKCE challenge is WebCrypto's SHA-256);
// the access token stays in memory and goes to certgraph's /graphql as a bearer token, a
// cross-origin request that certgraph's CORS (CERTGRAPH_CORS_ORIGINS) lets the page read.
// /config.json (written by the test): {issuer, clientId, redirectUri, scope, audience, graphql}.

import * as oauth from '/vendor/oauth4webapi.js';

const config = await (await fetch('/config.json')).json();
const issuer = new URL(config.issuer);
const client = { client_id: config.clientId };
// The proof's provider listens on loopback over plain http; a real one is https.
const insecure = { [oauth.allowInsecureRequests]: true };
let accessToken = null;

const $ = (selector) => document.querySelector(selector);
const show = (selector) => { $(selector).hidden = false; };
const status = (text) => { $('#status').textContent = text; };

async function authorizationServer() {
  const response = await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oidc' });
  return oauth.processDiscoveryResponse(issuer, response);
}

async function signIn() {
  const as = await authorizationServer();
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  sessionStorage.setItem('sign-in', JSON.stringify({ codeVerifier, state }));
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('client_id', client.client_id);
  url.searchParams.set('redirect_uri', config.redirectUri);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', config.scope);
  url.searchParams.set('resource', config.audience);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set('code_challenge_method', 'S256');
  status('redirecting to the provider');
  window.location.assign(url.href);
}

async function completeSignIn() {
  const as = await authorizationServer();
  const { codeVerifier, state } = JSON.parse(sessionStorage.getItem('sign-in'));
  sessionStorage.removeItem('sign-in');
  const parameters = oauth.validateAuthResponse(as, client, new URL(window.location.href), state);
  const response = await oauth.authorizationCodeGrantRequest(
    as, client, oauth.None(), parameters, config.redirectUri, codeVerifier,
    { ...insecure, additionalParameters: { resource: config.audience } },
  );
  const result = await oauth.processAuthorizationCodeResponse(as, client, response);
  window.history.replaceState(null, '', '/');
  return result.access_token;
}

async function graphql(query) {
  const response = await fetch(config.graphql, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${accessToken}` },
    body: JSON.stringify({ query }),
  });
  const body = await response.json();
  if (!response.ok || body.errors) {
    throw new Error(`certgraph answered ${response.status}: ${JSON.stringify(body.errors)}`);
  }
  return body.data;
}

async function showViewer() {
  const { viewer } = await graphql('{ viewer { id name email role } }');
  $('#viewer').dataset.id = viewer.id;
  $('#viewer-name').textContent = viewer.name;
  $('#viewer-email').textContent = viewer.email;
  $('#viewer-role').textContent = viewer.role;
  show('#viewer');
  status('signed in');
}

async function showCertifications() {
  const { viewer } = await graphql(`{ viewer { certifications(first: 50) {
    edges { node { id status certification { name } } } } } }`);
  const list = $('#certifications');
  list.replaceChildren(...viewer.certifications.edges.map(({ node }) => {
    const item = document.createElement('li');
    item.dataset.status = node.status;
    item.textContent = node.certification.name;
    return item;
  }));
  list.dataset.loaded = String(Date.now());
  show('#certifications');
}

function guarded(action) {
  return () => action().catch((error) => {
    $('#error').textContent = String(error?.message ?? error);
    status('failed');
  });
}

$('#sign-in').addEventListener('click', guarded(signIn));
$('#load-certifications').addEventListener('click', guarded(showCertifications));

if (new URL(window.location.href).searchParams.has('code') || new URL(window.location.href).searchParams.has('error')) {
  await guarded(async () => {
    status('completing sign-in');
    accessToken = await completeSignIn();
    await showViewer();
  })();
} else {
  show('#sign-in');
  status('signed out');
}

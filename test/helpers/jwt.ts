/** Signing keys and ID tokens for JWT tests, made with `jose` (the verifier under test is ours). */
import { createHmac } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface TestKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  /** The public JWK as a config lists it (`alg`, `kid`, `use: sig`). */
  publicJwk: JWK;
}

export async function makeKey(alg: string, kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), alg, kid, use: 'sig' } };
}

export async function privateJwk(key: TestKey): Promise<JWK> {
  return { ...(await exportJWK(key.privateKey)), alg: key.alg, kid: key.kid };
}

/** A token signed by `key`, valid for an hour unless the claims say otherwise. */
export async function signToken(key: TestKey, claims: JWTPayload, header: { kid?: string | null } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const kid = header.kid === null ? undefined : (header.kid ?? key.kid);
  return new SignJWT({ iat: now, exp: now + 3600, ...claims }).setProtectedHeader({ alg: key.alg, ...(kid ? { kid } : {}) }).sign(key.privateKey);
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** An unsigned token (`alg: none`). */
export function unsignedToken(claims: JWTPayload): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
}

/** The classic confusion attack: HS256 with the provider's public key as the HMAC secret. */
export function hmacWithPublicKey(publicJwk: JWK, claims: JWTPayload): string {
  const input = `${b64({ alg: 'HS256', kid: publicJwk.kid })}.${b64(claims)}`;
  const sig = createHmac('sha256', JSON.stringify(publicJwk)).update(input).digest('base64url');
  return `${input}.${sig}`;
}

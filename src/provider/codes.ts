// Authorization codes (RFC 6749 §4.1.2): 256 random bits, kept as SHA-256,
// single-use, 60 seconds, bound to the client, the redirect URI, the PKCE
// challenge and the session that authorized them.
import type { AppServices } from '../deps.js';
import { oauthCodes } from '../db/schema.js';
import { hashOpaqueToken, newOpaqueToken } from '../security/opaque-tokens.js';

export const CODE_TTL_SECONDS = 60;

export type CodeInput = {
  clientId: string;
  userId: string;
  sessionId: string;
  grantId: string | null;
  redirectUri: string;
  /** The scopes granted, space-separated. */
  scopes: string;
  nonce: string | null;
  /** The S256 challenge, or null (a confidential client that sent none). */
  codeChallenge: string | null;
};

/** A new code for an authorization the user allowed; returned once, stored hashed. */
export async function issueCode(svc: Pick<AppServices, 'database' | 'clock'>, input: CodeInput): Promise<string> {
  const code = newOpaqueToken();
  await svc.database.db.insert(oauthCodes).values({
    ...input,
    codeHash: hashOpaqueToken(code),
    createdAt: new Date(svc.clock()),
    expiresAt: new Date(svc.clock() + CODE_TTL_SECONDS * 1000),
  });
  return code;
}

// Scenario 8's callers: many signed-in users, each with several access tokens
// never seen by the service before, so the verified-token cache (10,000 entries)
// cannot hold the rotation and every request verifies a signature. Users and
// sessions are written straight into the bench's database (no argon2 logins);
// the tokens are signed with the bench's key by the service's own signer.
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { signAccessToken } from '../../../src/security/access-tokens.js';
import { buildKeyRing } from '../../../src/security/key-ring.js';

export async function freshTokens(o: { databaseUrl: string; jwk: string; users: number; perUser: number }): Promise<string[]> {
  const sql = postgres(o.databaseUrl, { max: 2, onnotice: () => {} });
  const ids = Array.from({ length: o.users }, (_, i) => ({
    user: randomUUID(),
    session: randomUUID(),
    email: `fresh-${i}-${randomUUID().slice(0, 8)}@bench.test`,
  }));
  const expires = new Date(Date.now() + 24 * 3600_000);
  try {
    for (let i = 0; i < ids.length; i += 1_000) {
      const chunk = ids.slice(i, i + 1_000);
      await sql`insert into users ${sql(chunk.map((c) => ({ id: c.user, email: c.email, name: 'Fresh User', password_hash: 'not-a-hash' })))}`;
      await sql`insert into user_roles ${sql(chunk.map((c) => ({ user_id: c.user, role_name: 'user' })))}`;
      await sql`insert into sessions ${sql(chunk.map((c) => ({ id: c.session, user_id: c.user, expires_at: expires })))}`;
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
  const ring = await buildKeyRing(o.jwk);
  const iat = Math.floor(Date.now() / 1000);
  const tokens: string[] = [];
  // Interleaved (user 0, 1, …, then their second tokens): consecutive requests are different users.
  for (let k = 0; k < o.perUser; k++) {
    for (const c of ids) {
      tokens.push(
        await signAccessToken(ring, {
          iss: 'auth-system',
          aud: 'auth-system',
          sub: c.user,
          sid: c.session,
          jti: randomUUID(),
          iat,
          exp: iat + 900,
          roles: ['user'],
          amr: ['pwd'],
        }),
      );
    }
  }
  return tokens;
}

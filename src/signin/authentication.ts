// What every sign-in strategy ends in (house rule 2): who signed in, the id of
// the session the sign-in starts, how they proved it and when. The core stops
// here: the API turns an Authentication into a token pair
// (modules/auth/auth.service.ts, tokenPairFor); the pages and the OpenID
// provider will turn it into a browser session.
import { randomUUID } from 'node:crypto';
import type { AppServices } from '../deps.js';

/** How a sign-in proved who the user is (RFC 8176 amr values). */
export type AmrValue = 'pwd' | 'otp' | 'hwk' | 'fed';
export type Amr = readonly AmrValue[];

export type Authentication = {
  userId: string;
  /** The id of the session this sign-in starts, whatever kind of session it becomes. */
  sessionId: string;
  amr: Amr;
  authTime: Date;
};

/** Where a sign-in comes from: the limits count by its address, and the session keeps both. */
export type SignInOrigin = { ip: string; userAgent: string };

/** A strategy succeeded: the sign-in is counted, and its Authentication made. */
export function authenticated(svc: Pick<AppServices, 'stats' | 'clock'>, userId: string, amr: Amr): Authentication {
  svc.stats.add('auth.loginSucceeded');
  return { userId, sessionId: randomUUID(), amr, authTime: new Date(svc.clock()) };
}

// What an upstream sign-in proves, whatever the provider's type: the identity
// (provider, subject) and what the provider says of its email. The linking
// rules (linking.ts) decide from this alone.
export type UpstreamProfile = {
  /** Stable at the provider: `sub` (Microsoft Entra ID: `tid`/`oid`), GitHub's numeric user id. */
  subject: string;
  email: string | null;
  /** Whether the provider says the email is verified (believed only with trustEmailVerified). */
  emailVerified: boolean;
  name: string | null;
};

/** What the start of an upstream sign-in keeps server-side (single use, 10 minutes), by the hash of its `state`. */
export type UpstreamFlow = {
  providerId: string;
  nonce: string;
  codeVerifier: string;
  /** A same-site path to go to once signed in. */
  next: string;
  /** Set when a signed-in browser session links the provider to its account. */
  link?: { userId: string; sessionId: string };
  /** SHA-256 of the flow cookie's value: the callback must come from the browser that started. */
  browserBinding: string;
  createdAt: number;
};

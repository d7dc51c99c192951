// Request and response schemas of passkeys (WebAuthn). A credential's JSON is
// what the browser's PublicKeyCredential.toJSON() gives (WebAuthn Level 3):
// every member the specification defines is typed and bounded, and members a
// browser adds that it does not define are dropped (not refused: browsers add
// them over time, and a passkey must keep working in a newer browser). Nothing
// in it is free-form.
import { z } from 'zod';
import { emailSchema, mfaCodeSchema, nameSchema } from '../../lib/schemas.js';

const b64url = z
  .string()
  .max(16_384)
  .regex(/^[A-Za-z0-9_-]*={0,2}$/, 'Must be base64url');
const credentialId = b64url.min(1).max(1_024);
/** A PRF output (HMAC-SHA-256 of the authenticator: 32 bytes), or an hmac-secret one. */
const secretOutput = b64url.max(256);

/**
 * AuthenticationExtensionsClientOutputsJSON: the outputs of the extensions the
 * specification defines; other members are dropped.
 */
const extensionResults = z
  .object({
    appid: z.boolean().optional(),
    appidExclude: z.boolean().optional(),
    credProps: z.object({ rk: z.boolean().optional() }).optional(),
    hmacCreateSecret: z.boolean().optional(),
    hmacGetSecret: z.object({ output1: secretOutput, output2: secretOutput.optional() }).optional(),
    largeBlob: z.object({ supported: z.boolean().optional(), blob: b64url.optional(), written: z.boolean().optional() }).optional(),
    prf: z
      .object({
        enabled: z.boolean().optional(),
        results: z.object({ first: secretOutput, second: secretOutput.optional() }).optional(),
      })
      .optional(),
  })
  .optional();
const attachment = z.enum(['platform', 'cross-platform']).nullable().optional();

export const RegistrationResponseSchema = z.strictObject({
  id: credentialId,
  rawId: credentialId,
  type: z.literal('public-key'),
  // AuthenticatorAttestationResponseJSON; other members are dropped.
  response: z.object({
    clientDataJSON: b64url.min(1),
    attestationObject: b64url.min(1),
    authenticatorData: b64url.optional(),
    transports: z.array(z.string().max(32)).max(10).optional(),
    // A COSE algorithm identifier (-7 ES256, -257 RS256, ...) and the SubjectPublicKeyInfo, when the browser knows the algorithm.
    publicKeyAlgorithm: z
      .number()
      .int()
      .min(-(2 ** 31))
      .max(2 ** 31 - 1)
      .optional(),
    publicKey: b64url.nullable().optional(),
  }),
  clientExtensionResults: extensionResults,
  authenticatorAttachment: attachment,
});

export const AuthenticationResponseSchema = z.strictObject({
  id: credentialId,
  rawId: credentialId,
  type: z.literal('public-key'),
  // AuthenticatorAssertionResponseJSON; other members are dropped.
  response: z.object({
    clientDataJSON: b64url.min(1),
    authenticatorData: b64url.min(1),
    signature: b64url.min(1),
    userHandle: b64url.max(128).nullable().optional(),
    attestationObject: b64url.optional(),
  }),
  clientExtensionResults: extensionResults,
  authenticatorAttachment: attachment,
});
export type AuthenticationResponse = z.infer<typeof AuthenticationResponseSchema>;

export const AddPasskeyBody = z.strictObject({
  name: nameSchema,
  response: RegistrationResponseSchema,
  /** End every other session of the user (a sign-in made before the passkey was added, perhaps not by them). */
  endOtherSessions: z.boolean().optional(),
});

// Adding or removing a sign-in method is a step-up action: `code` is required with TOTP on, but a missing one is 403 mfa_code_required.
/** currentPassword: required of a user who has a password (400 without it); a user without one proves a recent sign-in instead. */
export const PasskeyStepUpBody = z.strictObject({
  currentPassword: z.string().min(1).max(1024).optional(),
  code: mfaCodeSchema.optional(),
});

export const PasskeySchema = z.object({
  id: z.uuid(),
  name: z.string(),
  createdAt: z.iso.datetime(),
  lastUsedAt: z.iso.datetime().nullable(),
});
export type PasskeyView = z.infer<typeof PasskeySchema>;
export const PasskeyListSchema = z.object({ items: z.array(PasskeySchema) });

/** Options for navigator.credentials.create()/get(), as @simplewebauthn/server makes them (JSON-ready). */
export const CreationOptionsSchema = z.looseObject({ challenge: z.string(), rp: z.looseObject({}), user: z.looseObject({}) });
export const RequestOptionsSchema = z.looseObject({ challenge: z.string() });

export const PasskeyOptionsBody = z.union([
  z.strictObject({ email: emailSchema.optional() }),
  z.strictObject({ mfaToken: z.string().min(1).max(256) }),
]);

export const PasskeyLoginBody = z.strictObject({ response: AuthenticationResponseSchema });

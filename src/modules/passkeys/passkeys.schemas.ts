// Request and response schemas of passkeys (WebAuthn). A credential's JSON is
// what the browser's PublicKeyCredential.toJSON() gives: its top level is
// checked field by field, the members browsers add over time are let through
// (and ignored), and every string is bounded.
import { z } from 'zod';
import { emailSchema, mfaCodeSchema, nameSchema } from '../../lib/schemas.js';

const b64url = z
  .string()
  .max(16_384)
  .regex(/^[A-Za-z0-9_-]*={0,2}$/, 'Must be base64url');
const credentialId = b64url.min(1).max(1_024);
// Any object (typed as the browser's AuthenticationExtensionsClientOutputs is: no index signature).
const extensionResults = z.custom<object>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'Must be an object').optional();
const attachment = z.enum(['platform', 'cross-platform']).nullable().optional();

export const RegistrationResponseSchema = z.strictObject({
  id: credentialId,
  rawId: credentialId,
  type: z.literal('public-key'),
  response: z.looseObject({
    clientDataJSON: b64url.min(1),
    attestationObject: b64url.min(1),
    transports: z.array(z.string().max(32)).max(10).optional(),
  }),
  clientExtensionResults: extensionResults,
  authenticatorAttachment: attachment,
});

export const AuthenticationResponseSchema = z.strictObject({
  id: credentialId,
  rawId: credentialId,
  type: z.literal('public-key'),
  response: z.looseObject({
    clientDataJSON: b64url.min(1),
    authenticatorData: b64url.min(1),
    signature: b64url.min(1),
    userHandle: b64url.max(128).nullable().optional(),
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
export const PasskeyStepUpBody = z.strictObject({ currentPassword: z.string().min(1).max(1024), code: mfaCodeSchema.optional() });

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

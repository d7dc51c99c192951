// Request and response schemas of the auth module.
import { z } from 'zod';
import { emailSchema, nameSchema, newPasswordSchema, PLAIN_TEXT, singleLine } from '../../lib/schemas.js';
import { UserSchema } from '../users/users.schemas.js';

export const RegisterBody = z.strictObject({
  email: emailSchema,
  password: newPasswordSchema,
  name: nameSchema,
});

export const LoginBody = z.strictObject({
  // Not format-checked: any string gets the same 401 as a wrong password.
  email: z.string().trim().toLowerCase().min(1).max(254).refine(singleLine, PLAIN_TEXT),
  password: z.string().min(1).max(1024),
});

const mailedToken = z.string().min(1).max(512).refine(singleLine, PLAIN_TEXT);

export const EmailTokenBody = z.strictObject({ token: mailedToken });

export const MailRequestBody = z.strictObject({ email: emailSchema });

export const ResetPasswordBody = z.strictObject({
  token: mailedToken,
  password: newPasswordSchema,
  /** A TOTP or recovery code, for accounts with a second factor. */
  code: z.string().min(1).max(64).refine(singleLine, PLAIN_TEXT).optional(),
  /** Remove every passkey of the account too (a passkey may be what a thief added). */
  removePasskeys: z.boolean().optional(),
});

/** The answer to a mail request: the same whether or not the account exists. */
export const MailAcceptedSchema = z.object({ status: z.literal('accepted'), message: z.string() });

export const RefreshBody = z.strictObject({ refreshToken: z.string().min(1).max(512) });

export const TokenPairSchema = z.object({
  accessToken: z.string(),
  refreshToken: z.string(),
  tokenType: z.literal('Bearer'),
  expiresIn: z.number().int(),
});
export type TokenPair = z.infer<typeof TokenPairSchema>;

export const RegisteredSchema = z.object({ user: UserSchema });
export const VerifiedSchema = z.object({ user: UserSchema });

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

export const RefreshBody = z.strictObject({ refreshToken: z.string().min(1).max(512) });

export const TokenPairSchema = z.object({
  accessToken: z.string(),
  refreshToken: z.string(),
  tokenType: z.literal('Bearer'),
  expiresIn: z.number().int(),
});
export type TokenPair = z.infer<typeof TokenPairSchema>;

export const RegisteredSchema = z.object({ user: UserSchema });

export const JwksSchema = z.object({
  keys: z.array(
    z.object({
      kty: z.string(),
      crv: z.string(),
      x: z.string(),
      y: z.string().optional(),
      kid: z.string(),
      alg: z.string(),
      use: z.string(),
    }),
  ),
});

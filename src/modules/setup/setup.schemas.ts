// Request and response schemas of the first-run setup.
import { z } from 'zod';
import { PLAIN_TEXT, singleLine } from '../../lib/schemas.js';
import { RegisterBody, RegisteredSchema } from '../auth/auth.schemas.js';

/** The register fields, under the register rules, and the token from DATA_DIR/setup-token. */
export const SetupAdminBody = z.strictObject({
  token: z.string().min(1).max(512).refine(singleLine, PLAIN_TEXT),
  ...RegisterBody.shape,
});

export const SetupAdminSchema = RegisteredSchema;

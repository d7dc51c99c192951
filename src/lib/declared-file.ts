// Records declared as code (OAUTH_CLIENTS_FILE, IDENTITY_PROVIDERS_FILE): the
// file read, parsed as JSON and checked against its schema, or the problems
// found, each line naming the variable and the file (the caller stops the
// start with them).
import { readFileSync } from 'node:fs';
import type { z } from 'zod';

export function readDeclaredFile<S extends z.ZodType>(
  where: string,
  file: string,
  schema: S,
): { ok: true; data: z.infer<S> } | { ok: false; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, problems: [`${where}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`] };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, problems: [`${where}: not valid JSON (${(err as Error).message})`] };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    return { ok: false, problems: parsed.error.issues.map((i) => `${where}: ${i.path.map(String).join('.') || 'the file'}: ${i.message}`) };
  }
  return { ok: true, data: parsed.data };
}

// Text the database can store: PostgreSQL (and PGlite) refuse NUL in text
// (SQLSTATE 22021), and lone UTF-16 surrogates cannot be encoded as UTF-8.

// C0 controls, DEL and UTF-16 surrogates (paired ones are told apart below).
const SUSPECT = /[\u0000-\u001f\u007f\ud800-\udfff]/;
const CONTROL = /[\u0000-\u001f\u007f]/;
const EVERY_CONTROL = new RegExp(CONTROL.source, 'g');
const CONTROL_BUT_WHITESPACE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** No control characters and no lone surrogates (multi-line text may keep tab, CR and LF). */
export function isPlainText(s: string, opts: { multiline?: boolean } = {}): boolean {
  if (!SUSPECT.test(s)) return true;
  if (!s.isWellFormed()) return false;
  return !(opts.multiline ? CONTROL_BUT_WHITESPACE : CONTROL).test(s);
}

/**
 * The text as something the database accepts and a reader can see: control
 * characters become `\u00XX` escapes, lone surrogates U+FFFD. Ordinary text
 * comes back unchanged (and without a copy).
 */
export function storableText(s: string): string {
  if (!SUSPECT.test(s)) return s;
  return s.toWellFormed().replace(EVERY_CONTROL, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

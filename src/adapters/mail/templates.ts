// The messages the service sends, as plain text and HTML. Each says which
// service sent it, what was asked, from which address and when, and what to do
// if it was not the reader. Values are escaped for HTML; links carry their
// token in the fragment (built by the caller from the configured template).
import type { MailMessage } from './mailer.js';

export type MailKind = 'verify_email' | 'reset_password' | 'email_changed' | 'security_notice' | 'account_exists';

/** Who asked and when: shown in every message. */
export type MailContext = { service: string; ip: string; at: Date };

/** The service's name in mails, and where and when the mail's cause was asked for. */
export const mailContextOf = (publicUrl: string, ip: string, at: Date): MailContext => ({
  service: `auth-system (${new URL(publicUrl).host})`,
  ip,
  at,
});

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

const when = (d: Date) => `${d.toISOString().replace('T', ' ').slice(0, 19)} UTC`;

function compose(to: string, subject: string, paragraphs: string[], link?: { href: string; label: string }): MailMessage {
  const text = [...paragraphs.slice(0, 1), ...(link ? [`${link.label}:\n${link.href}`] : []), ...paragraphs.slice(1)].join('\n\n');
  const html = [
    '<!doctype html><html><body style="font-family:sans-serif;line-height:1.5;max-width:36em">',
    `<p>${escapeHtml(paragraphs[0]!)}</p>`,
    ...(link ? [`<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.label)}</a></p>`] : []),
    ...paragraphs.slice(1).map((p) => `<p>${escapeHtml(p)}</p>`),
    '</body></html>',
  ].join('\n');
  return { to, subject, text: `${text}\n`, html };
}

const asked = (c: MailContext) => `This was requested from the address ${c.ip} at ${when(c.at)}.`;

export function verifyEmailMessage(to: string, link: string, ttlSeconds: number, c: MailContext): MailMessage {
  return compose(
    to,
    `Confirm your email address for ${c.service}`,
    [
      `Someone asked ${c.service} to use ${to} as the email address of an account. ${asked(c)}`,
      `The link works once and expires in ${duration(ttlSeconds)}.`,
      'If it was not you, ignore this message: the address stays unconfirmed and nothing else changes.',
    ],
    { href: link, label: 'Confirm this address' },
  );
}

export function resetPasswordMessage(to: string, link: string, ttlSeconds: number, c: MailContext): MailMessage {
  return compose(
    to,
    `Reset your ${c.service} password`,
    [
      `Someone asked ${c.service} to reset the password of the account of ${to}. ${asked(c)}`,
      `The link works once and expires in ${duration(ttlSeconds)}. Setting a new password signs out every device.`,
      'If it was not you, ignore this message: your password stays as it is. If you get these often, tell your administrator.',
    ],
    { href: link, label: 'Choose a new password' },
  );
}

export function emailChangedMessage(to: string, newEmail: string, c: MailContext): MailMessage {
  return compose(to, `Your ${c.service} email address was changed`, [
    `The email address of your ${c.service} account was changed from ${to} to ${newEmail}. ${asked(c)}`,
    'Messages about the account now go to the new address.',
    'If it was not you, your account may be in someone else’s hands: contact your administrator at once.',
  ]);
}

/** Someone registered with an address that already has an account: told to its owner (a link to the forgot-password page, nothing secret). */
export function accountExistsMessage(to: string, forgotPasswordPage: string, c: MailContext): MailMessage {
  return compose(
    to,
    `Someone tried to register at ${c.service} with your address`,
    [
      `Someone tried to create a new ${c.service} account with your address ${to}. You already have an account there, so nothing was created and nothing changed. ${asked(c)}`,
      'If it was not you, ignore this message: your account stays as it is.',
    ],
    { href: forgotPasswordPage, label: 'If it was you and you forgot your password, choose a new one here' },
  );
}

/** A change to how the account signs in (a second factor on or off, a passkey added...): told to the owner, no link. */
export function securityNoticeMessage(to: string, change: string, c: MailContext): MailMessage {
  return compose(to, `Sign-in settings of your ${c.service} account changed`, [
    `On your ${c.service} account (${to}), ${change}. ${asked(c)}`,
    'If it was you, there is nothing to do.',
    'If it was not you, your account may be in someone else’s hands: change your password, end your other sessions and contact your administrator at once.',
  ]);
}

/** A TOTP code entered again after it was accepted (refused): someone else may have the password and be reading the codes. */
export function codeReusedMessage(to: string, c: MailContext): MailMessage {
  return compose(to, `A sign-in code of your ${c.service} account was used twice`, [
    `On your ${c.service} account (${to}), a code from your authenticator app was entered again after it had been accepted, and refused. ${asked(c)}`,
    'If you entered it twice yourself, there is nothing to do.',
    'If not, someone may know your password and see your codes: change your password, end your other sessions and contact your administrator at once.',
  ]);
}

function duration(seconds: number): string {
  if (seconds % 86_400 === 0) return seconds === 86_400 ? '24 hours' : `${seconds / 86_400} days`;
  if (seconds % 3600 === 0) return seconds === 3600 ? '1 hour' : `${seconds / 3600} hours`;
  const minutes = Math.max(1, Math.round(seconds / 60));
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

// Who an upstream profile is: the linking rules, in one place. An identity is
// keyed by (provider, subject), never by email; an email only decides whether
// an unknown identity may create an account or join one:
// - a known identity is its user;
// - a link flow (a signed-in browser session asked for it) links an unknown
//   identity to its user, or refuses one that is another user's;
// - an unknown identity whose email no account holds makes a new account;
// - an unknown identity whose email an account holds joins it only when the
//   provider says the email is verified, the provider is trusted to say so,
//   and the account's own email is verified too. Otherwise nothing is linked.
//   When the provider proves the email of an account that never proved it,
//   the account's holder may be someone who registered another person's
//   address ahead of them (pre-hijacking): that account's sessions end and its
//   pending mailed links die, and still nothing is linked.
// Features the rules need (creating a user, ending sessions) come in as
// `effects`: the sign-in core sits below the feature modules.
import { and, eq } from 'drizzle-orm';
import { isUniqueViolation } from '../../db/errors.js';
import type { AppServices } from '../../deps.js';
import { emailTokens, userIdentities, users } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';
import type { Emit } from '../../events/outbox.js';
import { requestMail } from '../../events/mail-relay.js';
import { mailContextOf, securityNoticeMessage } from '../../adapters/mail/templates.js';
import { BASE_ROLE, can } from '../../security/permissions.js';
import { storeKeys } from '../../store/store.js';
import type { UpstreamFlow, UpstreamProfile } from './profile.js';
import type { UpstreamProvider } from './providers.js';
import { ExternalSignInError } from './strategy.js';

type UserRow = typeof users.$inferSelect;

export type LinkingEffects = {
  /** A new account (role `user`, no password), in the caller's transaction; an unverified address is sent its verification link. */
  createUser(
    tx: Tx,
    emit: Emit,
    user: { email: string; name: string; emailVerifiedAt: Date | null; at: Date; ip: string },
  ): Promise<UserRow>;
  /** End every session of a user, in the caller's transaction (with its events, back-channel logouts...). */
  endAllSessions(tx: Tx, emit: Emit, userId: string, now: Date): Promise<void>;
};

/** Who the profile is, and what happened on the way. */
export type LinkOutcome = {
  user: UserRow;
  /** `created`: a new account; `linked`: the identity was added to an account; `known`: it was linked already. */
  how: 'created' | 'linked' | 'known';
};

const NOTICE_TTL_MS = 7 * 86_400_000;

async function notice(tx: Tx, emit: Emit, svc: AppServices, to: string, change: string, ip: string, now: Date) {
  const message = securityNoticeMessage(to, change, mailContextOf(svc.config.publicUrl, ip, now));
  await requestMail(tx, emit, { ...message, kind: 'security_notice', expiresAt: new Date(now.getTime() + NOTICE_TTL_MS) }, now);
}

const linkedChange = (provider: UpstreamProvider) => `sign-in with ${provider.name} was linked to your account`;

/** Whether guests may create accounts (the admins can close registration by taking auth:register from guest). */
async function registrationOpen(svc: AppServices): Promise<boolean> {
  const permissionsOf = await svc.roleCache.snapshot(await svc.store.get(storeKeys.rolesVersion));
  return can(permissionsOf([BASE_ROLE]), 'auth:register');
}

type Decision = LinkOutcome | { refuse: ExternalSignInError };

/**
 * Apply the rules to a checked profile, in one transaction with its events
 * and mails. Throws ExternalSignInError when the sign-in cannot go on
 * (identity_in_use, identity_not_linked, email_not_verified, registration_closed).
 */
export async function resolveIdentity(
  svc: AppServices,
  effects: LinkingEffects,
  provider: UpstreamProvider,
  profile: UpstreamProfile,
  flow: Pick<UpstreamFlow, 'link'>,
  ip: string,
): Promise<LinkOutcome> {
  const mayRegister = flow.link ? false : await registrationOpen(svc);
  const trusted = profile.emailVerified && provider.trustEmailVerified;
  const decide = () =>
    svc.tx<Decision>(async (tx, emit) => {
      const now = new Date(svc.clock());
      const [identity] = await tx
        .select()
        .from(userIdentities)
        .where(and(eq(userIdentities.providerId, provider.id), eq(userIdentities.subject, profile.subject)));
      if (identity) {
        if (flow.link && identity.userId !== flow.link.userId) {
          return {
            refuse: new ExternalSignInError(
              'identity_in_use',
              `This ${provider.name} account is already linked to another account here. Sign in with it to use that account, or unlink it there first.`,
            ),
          };
        }
        await tx
          .update(userIdentities)
          .set({ lastUsedAt: now, ...(profile.email !== null ? { email: profile.email } : {}) })
          .where(eq(userIdentities.id, identity.id));
        const [user] = await tx.select().from(users).where(eq(users.id, identity.userId));
        if (!user) throw new Error('identity without its user');
        return { user, how: 'known' };
      }

      if (flow.link) {
        const [user] = await tx.select().from(users).where(eq(users.id, flow.link.userId));
        if (!user) return { refuse: new ExternalSignInError('unauthenticated', 'Your account is gone: sign in again') };
        await tx.insert(userIdentities).values({
          userId: user.id,
          providerId: provider.id,
          subject: profile.subject,
          email: profile.email,
          linkedAt: now,
          lastUsedAt: now,
        });
        await notice(tx, emit, svc, user.email, linkedChange(provider), ip, now);
        return { user, how: 'linked' };
      }

      if (profile.email === null) {
        return {
          refuse: new ExternalSignInError(
            'email_not_verified',
            `${provider.name} did not tell us an email address, which a new account needs. Allow sharing your email there, or sign up another way.`,
          ),
        };
      }
      const [holder] = await tx
        .select()
        .from(users)
        // Addresses are stored lower-cased (the API's schemas and the profile lower-case them): the unique index answers.
        .where(eq(users.email, profile.email));

      if (!holder) {
        if (!mayRegister) {
          return {
            refuse: new ExternalSignInError('registration_closed', 'New accounts cannot be created here: ask an administrator for one'),
          };
        }
        const local = profile.email.slice(0, profile.email.indexOf('@'));
        const user = await effects.createUser(tx, emit, {
          email: profile.email,
          name: (profile.name ?? local).slice(0, 200) || local,
          emailVerifiedAt: trusted ? now : null,
          at: now,
          ip,
        });
        await tx.insert(userIdentities).values({
          userId: user.id,
          providerId: provider.id,
          subject: profile.subject,
          email: profile.email,
          linkedAt: now,
          lastUsedAt: now,
        });
        return { user, how: 'created' };
      }

      if (trusted && holder.emailVerifiedAt !== null) {
        await tx.insert(userIdentities).values({
          userId: holder.id,
          providerId: provider.id,
          subject: profile.subject,
          email: profile.email,
          linkedAt: now,
          lastUsedAt: now,
        });
        await notice(tx, emit, svc, holder.email, linkedChange(provider), ip, now);
        return { user: holder, how: 'linked' };
      }

      if (trusted) {
        // The provider proves the address; whoever holds this account never did.
        await effects.endAllSessions(tx, emit, holder.id, now);
        await tx.delete(emailTokens).where(eq(emailTokens.userId, holder.id));
      }
      return {
        refuse: new ExternalSignInError(
          'identity_not_linked',
          `An account with this email already exists. Sign in with your existing method, then link ${provider.name} from your account page.`,
          trusted ? 'unverified local account: its sessions ended and its mailed links were voided' : undefined,
        ),
      };
    });
  let decision: Decision;
  try {
    decision = await decide();
  } catch (err) {
    // Two first sign-ins of the same identity (or the same new address) at once, from two tabs or a
    // double click: the loser of the insert decides again and finds what the winner made.
    if (!isUniqueViolation(err)) throw err;
    decision = await decide();
  }
  if ('refuse' in decision) throw decision.refuse;
  return decision;
}

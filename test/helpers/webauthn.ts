// A software WebAuthn authenticator (ES256, "none" attestation) for API-level passkey tests.
// It produces the real protocol bytes (CBOR attestation objects, authenticator data, DER signatures), so the
// server's own verification is exercised; signature counters and tamper options drive the negative tests.
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { type CBORType, encodeCBOR } from '@levischuck/tiny-cbor';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';

// The authenticator reports no extension outputs. Typed as such, its responses fit the typed
// client's bodies (the server's schema reads PRF outputs as base64url strings, not BufferSource).
type NoExtensions = { clientExtensionResults: Record<string, never> };
export type SoftRegistration = Omit<RegistrationResponseJSON, 'clientExtensionResults'> & NoExtensions;
export type SoftAssertion = Omit<AuthenticationResponseJSON, 'clientExtensionResults'> & NoExtensions;

export type SoftAuthenticatorOptions = { origin: string; rpId?: string };

/** Deliberate deviations for a registration response (each one should make the server refuse it). */
export type RegisterTamper = {
  origin?: string;
  rpId?: string;
  challenge?: string;
  type?: string;
  userVerified?: boolean;
  /** Claim this credential id (base64url) for the new key, as a device copying someone else's credential would. */
  credentialId?: string;
};

/** Deliberate deviations for an authentication response. */
export type AuthenticateTamper = {
  origin?: string;
  rpId?: string;
  challenge?: string;
  /** Report (and keep) this signature counter instead of incrementing the stored one. */
  counter?: number;
  userVerified?: boolean;
  /** Use this held credential, whatever allowCredentials says. */
  credentialId?: string;
  /** Sign with a fresh key that has nothing to do with the credential. */
  signWith?: 'wrong-key';
  type?: string;
};

/** What a test may see of a held credential (the private key stays inside). */
export type SoftCredential = { id: string; counter: number; userHandle: string; rpId: string };

type Held = SoftCredential & { privateKey: KeyObject; cosePublicKey: Uint8Array };

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;
const COSE_KTY_EC2 = 2;
const COSE_ALG_ES256 = -7;
const COSE_CRV_P256 = 1;

const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string): Buffer => createHash('sha256').update(data).digest();
const uint32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const uint16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const flags = (userVerified: boolean | undefined, extra = 0): Buffer =>
  Buffer.from([FLAG_UP | (userVerified === false ? 0 : FLAG_UV) | extra]);
const clientData = (type: string, challenge: string, origin: string): Buffer =>
  Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8');
const newKeyPair = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** COSE_Key (EC2, ES256, P-256) for a public key, CBOR-encoded with integer labels. */
function coseKey(publicKey: KeyObject): Uint8Array {
  const jwk = publicKey.export({ format: 'jwk' });
  const coord = (v: string | undefined): Uint8Array => {
    const bytes = new Uint8Array(Buffer.from(v ?? '', 'base64url'));
    if (bytes.length !== 32) throw new Error(`unexpected P-256 coordinate length ${bytes.length}`);
    return bytes;
  };
  return encodeCBOR(
    new Map<number, CBORType>([
      [1, COSE_KTY_EC2],
      [3, COSE_ALG_ES256],
      [-1, COSE_CRV_P256],
      [-2, coord(jwk.x)],
      [-3, coord(jwk.y)],
    ]),
  );
}

export class SoftAuthenticator {
  readonly origin: string;
  readonly rpId: string;
  readonly #held: Held[] = [];

  constructor(opts: SoftAuthenticatorOptions) {
    this.origin = opts.origin;
    this.rpId = opts.rpId ?? new URL(opts.origin).hostname;
  }

  get credentials(): readonly SoftCredential[] {
    return this.#held.map(({ id, counter, userHandle, rpId }) => ({ id, counter, userHandle, rpId }));
  }

  /** The COSE_Key of a held credential, base64url: the bytes a relying party stores as its public key. */
  publicKeyOf(id: string): string {
    const cred = this.#held.find((c) => c.id === id);
    if (!cred) throw new Error(`this authenticator holds no credential ${id}`);
    return b64url(cred.cosePublicKey);
  }

  /** Drops a held credential (as if the user deleted the passkey on the device). */
  forget(id: string): void {
    const i = this.#held.findIndex((c) => c.id === id);
    if (i >= 0) this.#held.splice(i, 1);
  }

  /** navigator.credentials.create(): a new ES256 credential with "none" attestation. */
  register(options: PublicKeyCredentialCreationOptionsJSON, tamper: RegisterTamper = {}): SoftRegistration {
    const held = new Set(this.#held.map((c) => c.id));
    if (options.excludeCredentials?.some((c) => held.has(c.id))) throw new Error('InvalidStateError');

    const rpId = tamper.rpId ?? options.rp.id ?? this.rpId;
    const credId = tamper.credentialId !== undefined ? Buffer.from(tamper.credentialId, 'base64url') : randomBytes(32);
    const id = b64url(credId);
    const { privateKey, publicKey } = newKeyPair();
    const cosePublicKey = coseKey(publicKey);
    this.#held.push({ id, counter: 0, userHandle: options.user.id, rpId, privateKey, cosePublicKey });

    const authData = Buffer.concat([
      sha256(rpId),
      flags(tamper.userVerified, FLAG_AT),
      uint32(0),
      Buffer.alloc(16), // aaguid: all zero for "none" attestation
      uint16(credId.length),
      credId,
      cosePublicKey,
    ]);
    const attestationObject = encodeCBOR(
      new Map<string, CBORType>([
        ['fmt', 'none'],
        ['attStmt', new Map<string, CBORType>()],
        ['authData', new Uint8Array(authData)],
      ]),
    );
    const clientDataJSON = clientData(
      tamper.type ?? 'webauthn.create',
      tamper.challenge ?? options.challenge,
      tamper.origin ?? this.origin,
    );
    return {
      id,
      rawId: id,
      type: 'public-key',
      response: { clientDataJSON: b64url(clientDataJSON), attestationObject: b64url(attestationObject), transports: ['internal'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** navigator.credentials.get(): an assertion from a held credential, bumping its counter. */
  authenticate(options: PublicKeyCredentialRequestOptionsJSON, tamper: AuthenticateTamper = {}): SoftAssertion {
    const cred = this.#pick(options, tamper.credentialId);
    if (tamper.counter !== undefined) {
      if (!Number.isInteger(tamper.counter) || tamper.counter < 0 || tamper.counter > 0xffffffff) {
        throw new Error(`counter ${tamper.counter} is not a uint32`);
      }
      cred.counter = tamper.counter;
    } else {
      cred.counter += 1;
    }

    const authData = Buffer.concat([sha256(tamper.rpId ?? cred.rpId), flags(tamper.userVerified), uint32(cred.counter)]);
    const clientDataJSON = clientData(tamper.type ?? 'webauthn.get', tamper.challenge ?? options.challenge, tamper.origin ?? this.origin);
    const key = tamper.signWith === 'wrong-key' ? newKeyPair().privateKey : cred.privateKey;
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), { key, dsaEncoding: 'der' });
    return {
      id: cred.id,
      rawId: cred.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        userHandle: cred.userHandle,
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  #pick(options: PublicKeyCredentialRequestOptionsJSON, credentialId: string | undefined): Held {
    const byId = (id: string) => this.#held.find((c) => c.id === id);
    if (credentialId !== undefined) {
      const cred = byId(credentialId);
      if (!cred) throw new Error(`NotAllowedError: this authenticator holds no credential ${credentialId}`);
      return cred;
    }
    const allow = options.allowCredentials ?? [];
    if (allow.length > 0) {
      for (const { id } of allow) {
        const cred = byId(id);
        if (cred) return cred;
      }
      throw new Error('NotAllowedError: none of allowCredentials is held by this authenticator');
    }
    const rpId = options.rpId ?? this.rpId;
    const cred = this.#held.findLast((c) => c.rpId === rpId);
    if (!cred) throw new Error(`NotAllowedError: no discoverable credential for ${rpId}`);
    return cred;
  }
}

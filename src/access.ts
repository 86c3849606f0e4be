/**
 * Who may connect: one access rule for every listener (local sockets, Unix seqpacket and stream
 * listeners, RPC servers, Windows named pipes) and for datagram receivers that take credentials.
 * The rule is decided from the kernel's peer credentials of each accepted connection before any
 * of its bytes is read or any handler runs; a refused peer is closed, counted and reported.
 *
 * The default everywhere is 'same-user': the peer's effective uid is ours, or root's (as
 * ssh-agent does). On Windows the same default is a DACL on the pipe (this user, SYSTEM and
 * Administrators) that the OS enforces before a client is connected (see docs/security.md).
 */
import type { EventEmitter } from 'node:events';
import { InterprocessError, invalidArgument, invalidType, unsupported } from './errors.js';
import type { PeerCredentials } from './credentials.js';
import { isWindows } from './platform.js';

/** Users and groups let in besides this user and root. */
export interface AllowList {
  /** User ids let in (besides ours and root). */
  readonly uids?: readonly number[];
  /**
   * Group ids let in: a peer whose effective (primary) group or one of whose supplementary groups
   * is listed. The supplementary groups are read as each connection is accepted (Linux
   * SO_PEERGROUPS, macOS and FreeBSD LOCAL_PEERCRED, which keeps 15 at most); where the OS does
   * not tell them (OpenBSD, NetBSD), and for datagrams (SCM_CREDENTIALS carries no groups), only
   * the primary group counts.
   */
  readonly gids?: readonly number[];
}

/**
 * Who may connect (the `allow` option of every listener):
 * - `'same-user'` (the default): peers running as this process's effective user, or as root.
 * - `'any'`: every peer that the OS lets reach the name (see docs/security.md: a Linux abstract
 *   name is reachable by every local user).
 * - `{ uids, gids }`: this user, root, the listed users, and members of the listed groups
 *   (primary or supplementary; Unix only).
 * - a predicate: `(peer) => boolean`, called synchronously with the peer's credentials before
 *   anything of the connection is read; true lets it in. A predicate that throws refuses the peer.
 */
export type AccessRule = 'same-user' | 'any' | AllowList | ((peer: PeerCredentials) => boolean);

/** @internal A validated access rule. */
export interface AccessCheck {
  /** The rule as given (or the default). */
  readonly rule: AccessRule;
  /** Whether the rule can let in peers of other users than ours and root (the v8 codec's rule). */
  readonly admitsOthers: boolean;
  /** Whether anything needs checking per peer ('any' needs nothing). */
  readonly checks: boolean;
  /** Whether the rule needs the peer's supplementary groups (a `gids` list): read them at accept. */
  readonly needsGroups: boolean;
  /** Whether `peer` may connect; throws what a predicate threw. */
  admits(peer: PeerCredentials): boolean;
}

function ownUid(): number | null {
  return typeof process.geteuid === 'function' ? process.geteuid() : null;
}

function idList(value: unknown, argument: string): readonly number[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalidType(argument, 'an array of ids', value);
  for (const id of value) {
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw invalidArgument(argument, `must hold ids (integers from 0 to 4294967295); got ${String(id)}`);
  }
  return Object.freeze([...value]);
}

/** @internal
 * Validates an `allow` option (undefined: 'same-user'). `argument` names it in errors. Throws
 * ERR_INTERPROCESS_UNSUPPORTED for `{ uids, gids }` on Windows, which has no uids.
 */
export function accessCheck(rule: unknown, argument = 'options.allow'): AccessCheck {
  const given = rule === undefined ? 'same-user' : rule;
  if (given === 'any') return Object.freeze({ rule: 'any', admitsOthers: true, checks: false, needsGroups: false, admits: () => true });
  if (given === 'same-user') {
    return Object.freeze({ rule: 'same-user', admitsOthers: false, checks: true, needsGroups: false, admits: (peer: PeerCredentials) => isWindows || sameUser(peer.uid) });
  }
  if (typeof given === 'function') {
    const predicate = given as (peer: PeerCredentials) => unknown;
    return Object.freeze({ rule: given as AccessRule, admitsOthers: true, checks: true, needsGroups: false, admits: (peer: PeerCredentials) => predicate(peer) === true });
  }
  if (given !== null && typeof given === 'object' && !Array.isArray(given)) {
    if (isWindows) throw unsupported(`${argument} with uids or gids`, "Windows has no uids or gids: use 'same-user' (a DACL the OS enforces), 'any', a predicate of the client's process id, or securityDescriptor (SDDL).");
    const list = given as AllowList;
    const unknown = Object.keys(list).filter((key) => key !== 'uids' && key !== 'gids');
    if (unknown.length > 0) throw invalidArgument(argument, `takes only uids and gids; got ${unknown.join(', ')}`);
    const uids = idList(list.uids, `${argument}.uids`);
    const gids = idList(list.gids, `${argument}.gids`);
    const own = ownUid();
    const admitsOthers = gids.length > 0 || uids.some((uid) => uid !== own && uid !== 0);
    return Object.freeze({
      rule: Object.freeze({ uids, gids }),
      admitsOthers,
      checks: true,
      needsGroups: gids.length > 0,
      admits: (peer: PeerCredentials) => sameUser(peer.uid) || (peer.uid !== null && uids.includes(peer.uid)) || inGroups(peer, gids),
    });
  }
  throw invalidType(argument, "'same-user', 'any', { uids, gids } or a function (peer) => boolean", given);
}

/** Whether the peer's primary group, or one of its supplementary groups (when read), is listed. */
function inGroups(peer: PeerCredentials, gids: readonly number[]): boolean {
  if (gids.length === 0) return false;
  if (peer.gid !== null && gids.includes(peer.gid)) return true;
  return peer.groups != null && peer.groups.some((gid) => gids.includes(gid));
}

function sameUser(uid: number | null): boolean {
  return uid !== null && (uid === 0 || uid === ownUid());
}

/**
 * @internal The socket file's mode: as given, else 0o600 under the default rule (the kernel then
 * refuses other users at connect(2) already), else what the umask leaves (undefined).
 */
export function socketFileMode(mode: number | undefined, check: AccessCheck): number | undefined {
  return mode ?? (check.rule === 'same-user' ? 0o600 : undefined);
}

/** @internal What to emit when a peer is refused: counted by the caller. */
export interface Refusal {
  /** The peer's credentials, or null when they could not be read. */
  readonly credentials: PeerCredentials | null;
  /** What a predicate threw, or the failure to read the credentials. */
  readonly error?: unknown;
}

/**
 * @internal Decides for one peer: `read` gets its credentials (a throw counts as a refusal: we
 * cannot tell who it is). Returns null when admitted, the refusal otherwise.
 */
export function decide(check: AccessCheck, read: () => PeerCredentials): Refusal | null {
  let credentials: PeerCredentials;
  try {
    credentials = read();
  } catch (error) {
    return { credentials: null, error };
  }
  try {
    return check.admits(credentials) ? null : { credentials };
  } catch (error) {
    return { credentials, error };
  }
}

/** @internal Emits 'refused' (credentials, error?) on `owner`: an event nobody listens to is dropped. */
export function reportRefusal(owner: EventEmitter, refusal: Refusal): void {
  if (refusal.error === undefined) owner.emit('refused', refusal.credentials);
  else owner.emit('refused', refusal.credentials, refusal.error);
}

// The access check of the listener that accepted a connection (for the v8 codec's rule).
const acceptedUnder = new WeakMap<object, AccessCheck>();

/** @internal Records the rule a connection was accepted under. */
export function markAccepted(connection: object, check: AccessCheck): void {
  acceptedUnder.set(connection, check);
}

/** @internal The rule a connection was accepted under (undefined: not accepted by our listener). */
export function acceptedRule(connection: unknown): AccessCheck | undefined {
  return connection !== null && typeof connection === 'object' ? acceptedUnder.get(connection) : undefined;
}

/**
 * @internal The v8 codec's rule: `v8.deserialize` trusts its input (a few bytes can make a value
 * that costs its reader seconds), so a channel with it may not read a connection that a listener
 * let in under a rule admitting other users, unless the caller says it trusts them.
 */
export function checkCodecTrust(isV8: boolean, check: AccessCheck | undefined, trustPeers: unknown, where: string): void {
  if (trustPeers !== undefined && typeof trustPeers !== 'boolean') throw invalidType('options.trustPeers', 'a boolean', trustPeers);
  if (!isV8 || trustPeers === true || check === undefined || !check.admitsOthers) return;
  throw new InterprocessError(
    'ERR_INTERPROCESS_UNTRUSTED_CODEC',
    `${where}: the v8 codec deserializes whatever a peer sends (v8.deserialize trusts its input: a few bytes can make a value that costs seconds to use), and this listener's allow rule (${describe(check.rule)}) lets in peers of other users. Use the json codec, keep allow at 'same-user', or pass { trustPeers: true } if every peer the rule admits is trusted.`,
  );
}

/** @internal A readable form of a rule, for messages. */
export function describe(rule: AccessRule): string {
  if (typeof rule === 'string') return `'${rule}'`;
  if (typeof rule === 'function') return 'a predicate';
  return JSON.stringify(rule);
}

/**
 * The native receive's `mark` (Linux seqpacket sockets): what this side knows of
 * SO_PASSCRED, which tells a real empty message from the end. The same values as
 * native/unix/receive-mark.h (exported there as unixSockets.MARKS; a test checks they agree).
 */
export const MARKS = Object.freeze({
  /** SO_PASSCRED is on because the user asked (passCredentials), or no marking is needed. */
  USER_ON: 0,
  /** It is off: the read turns it on for its duration only, and reports no credentials. */
  OFF: 1,
  /** Unknown (an adopted descriptor): the read asks the kernel first. */
  UNKNOWN: 2,
  /** It is on only to mark real messages (an accepted socket): credentials are not reported. */
  ON: 3,
  /**
   * SO_TIMESTAMP is on (set once when the socket was made): every real message carries a
   * timestamp, the end none; credentials are reported when SO_PASSCRED is on.
   */
  STAMP: 4,
} as const);

/*
 * The `mark` argument of unixSockets.receive (Linux seqpacket sockets): what the caller knows of
 * SO_PASSCRED, which tells a real empty message from the end (see receive.c). Exported to JS as
 * unixSockets.MARKS; src/unix-socket/marks.ts spells the same values, and a test checks they agree.
 */
#ifndef INTERPROCESS_RECEIVE_MARK_H
#define INTERPROCESS_RECEIVE_MARK_H

enum receive_mark {
  MARK_USER_ON = 0, /* SO_PASSCRED is on because the user asked (or no marking is needed) */
  MARK_OFF = 1,     /* it is off: turn it on for this read only, and report no credentials */
  MARK_UNKNOWN = 2, /* unknown (an adopted socket): ask the kernel first */
  MARK_ON = 3,      /* it is on only for this marking: report no credentials */
  MARK_STAMP = 4,   /* SO_TIMESTAMP is on (receive_stamp): every real message carries a timestamp */
};

#endif

/** Bad usage of the command (exit code 2): the message says what is wrong, the help follows. */
export class UsageError extends Error {}

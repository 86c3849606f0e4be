// The protocol between the two roles: what a secondary sends (see single-instance.ts).

/** The protocol's version, `v` of every instance. */
export const PROTOCOL = 1;

/** @internal The instance as sent. */
export interface Wire<D> {
  v: number;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  data?: D;
}

/** An error as the primary answers it: `{ code, message }`, whatever was thrown. */
export function errorMessage(error: unknown): { code: string; message: string } {
  const e = error as { code?: unknown; message?: unknown };
  return { code: typeof e?.code === 'string' ? e.code : 'ERR_INTERPROCESS_REMOTE', message: typeof e?.message === 'string' ? e.message : String(error) };
}

/** Whether `message` is an instance of the protocol's shape. */
export function isWire(message: unknown): message is Wire<unknown> {
  if (message === null || typeof message !== 'object') return false;
  const m = message as Record<string, unknown>;
  if (m.v !== PROTOCOL || typeof m.cwd !== 'string' || !Array.isArray(m.argv) || !m.argv.every((a) => typeof a === 'string')) return false;
  if (m.env === null || typeof m.env !== 'object' || Array.isArray(m.env)) return false;
  return Object.values(m.env as object).every((value) => typeof value === 'string');
}

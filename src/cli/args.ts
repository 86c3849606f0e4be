/**
 * The command line, parsed and checked whole before anything is opened: what to run, or a
 * UsageError (exit code 2) that says what is wrong.
 */
import { parseArgs } from 'node:util';
import { type Address, ADDRESS_HELP, parseAddress } from './address.js';
import { FRAMINGS, type Framing } from './framing.js';
import { HELP } from './help.js';
import { DEFAULT_LINGER_MS } from './shuttle.js';
import { UsageError } from './usage.js';

export { UsageError };

export type Command =
  | { command: 'help'; text: string }
  | { command: 'version' }
  | { command: 'info'; json: boolean }
  | { command: 'listen'; address: Address; mode: number | undefined; linger: number; framing: Framing }
  | { command: 'connect'; address: Address; wait: boolean; timeout: number | undefined; linger: number; framing: Framing }
  | { command: 'bench'; quick: boolean; only: string | undefined; json: string | undefined; svg: string | undefined };

type Spec = Record<string, { type: 'string' | 'boolean' }>;

function options<S extends Spec>(args: string[], spec: S): { values: { [K in keyof S]?: S[K]['type'] extends 'string' ? string : boolean } & { help?: boolean }; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...spec, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: values as never, positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function parseMode(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-7]{3,4}$/.test(text)) throw new UsageError(`--mode takes an octal mode such as 600; got ${JSON.stringify(text)}`);
  return Number.parseInt(text, 8);
}

function parseMs(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) throw new UsageError(`${flag} takes milliseconds (a number, 0 or more); got ${JSON.stringify(text)}`);
  return value;
}

// What each kind of address carries: bytes with a peer, messages with a peer, or neither.
const MESSAGES = (address: Address) => address.kind === 'datagram' || address.kind === 'seqpacket' || (address.kind === 'named-pipe' && address.message);
const CONNECTION = (address: Address) => address.kind !== 'datagram' && address.kind !== 'fifo';

function parseFraming(text: string | undefined, address: Address): Framing {
  if (text === undefined) return 'line';
  if (!MESSAGES(address)) throw new UsageError('--framing is for message addresses (dgram:, seqpacket:, msgpipe:); this one carries bytes, which go through as they are');
  if (!(FRAMINGS as readonly string[]).includes(text)) throw new UsageError(`--framing takes ${FRAMINGS.join(' or ')}; got ${JSON.stringify(text)}`);
  return text as Framing;
}

function parseLinger(text: string | undefined, address: Address): number {
  const linger = parseMs('--linger', text);
  if (linger === undefined) return DEFAULT_LINGER_MS;
  if (!CONNECTION(address)) throw new UsageError(`--linger is for connections; ${address.kind === 'fifo' ? 'a FIFO' : 'a datagram socket'} has no peer whose end it would follow`);
  return linger;
}

function oneAddress(positionals: string[], command: string): Address {
  if (positionals.length !== 1) throw new UsageError(`${command} takes exactly one ADDRESS\n\n${HELP[command]}`);
  try {
    return parseAddress(positionals[0]!);
  } catch (error) {
    // The library's own argument errors (a name it cannot take) are bad usage here too.
    const code = (error as { code?: string }).code;
    if (error instanceof UsageError || code === 'ERR_INVALID_ARG_VALUE' || code === 'ERR_OUT_OF_RANGE') {
      throw new UsageError(`${(error as Error).message}\n\n${ADDRESS_HELP}`);
    }
    throw error;
  }
}

/** The command line (without node and the script) as what to run. */
export function parseCommandLine(argv: readonly string[]): Command {
  const [command, ...args] = argv;
  if (command === undefined) throw new UsageError(`a command is missing\n\n${HELP.main}`);
  if (command === '--help' || command === '-h' || command === 'help') return { command: 'help', text: HELP.main! };
  if (command === '--version' || command === '-v') {
    if (args.length > 0) throw new UsageError(`${command} takes no arguments`);
    return { command: 'version' };
  }
  if (command === 'info') {
    const { values, positionals } = options(args, { json: { type: 'boolean' } });
    if (values.help) return { command: 'help', text: HELP.info! };
    if (positionals.length > 0) throw new UsageError(`info takes no ADDRESS\n\n${HELP.info}`);
    return { command: 'info', json: Boolean(values.json) };
  }
  if (command === 'listen') {
    const { values, positionals } = options(args, { mode: { type: 'string' }, linger: { type: 'string' }, framing: { type: 'string' } });
    if (values.help) return { command: 'help', text: HELP.listen! };
    const address = oneAddress(positionals, 'listen');
    const mode = parseMode(values.mode);
    if (mode !== undefined && address.kind === 'named-pipe') throw new UsageError('--mode is for Unix socket files and FIFOs; a named pipe has a security descriptor instead');
    return { command: 'listen', address, mode, linger: parseLinger(values.linger, address), framing: parseFraming(values.framing, address) };
  }
  if (command === 'connect') {
    const { values, positionals } = options(args, { wait: { type: 'boolean' }, timeout: { type: 'string' }, linger: { type: 'string' }, framing: { type: 'string' } });
    if (values.help) return { command: 'help', text: HELP.connect! };
    const address = oneAddress(positionals, 'connect');
    const timeout = parseMs('--timeout', values.timeout);
    return { command: 'connect', address, wait: Boolean(values.wait), timeout, linger: parseLinger(values.linger, address), framing: parseFraming(values.framing, address) };
  }
  if (command === 'bench') {
    const { values, positionals } = options(args, { quick: { type: 'boolean' }, only: { type: 'string' }, json: { type: 'string' }, svg: { type: 'string' } });
    if (values.help) return { command: 'help', text: HELP.bench! };
    if (positionals.length > 0) throw new UsageError(`bench takes no ADDRESS\n\n${HELP.bench}`);
    return { command: 'bench', quick: Boolean(values.quick), only: values.only, json: values.json, svg: values.svg };
  }
  throw new UsageError(`unknown command '${command}'\n\n${HELP.main}`);
}
